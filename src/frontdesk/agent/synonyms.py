"""Words patients use for the things a practice's documents name differently.

Each line (with its indented continuation) is one group of interchangeable words, per
language; a question word in a group also matches the others, at a lower weight than an exact
match. Kept small and generic to front-desk topics: these are not answers, only ways of asking.
"""

from __future__ import annotations

from functools import lru_cache

from frontdesk.agent.text import fold, stem

GROUPS_EN = """
cost costs price prices fee fees charge charged charges rate rates pay paying much expensive
  penalty penalties cheaper cheap
cancel cancellation cancelling canceling cancellations bail bailing
reschedule rescheduling move change
miss missed missing noshow no-show skip skipped blanked spaced
appointment appointments session sessions visit visits
regular standard normal typical usual individual
extended longer
late tardy behind
hours open opening close closed closing
weekend weekends saturday saturdays sunday sundays
weekday weekdays monday mondays tuesday tuesdays wednesday wednesdays thursday thursdays
  friday fridays
holiday holidays christmas thanksgiving
telehealth video virtual online zoom remote remotely telemedicine teletherapy facetime
insurance insurer insurances plan plans coverage covered cover accept take network in-network
medicaid mainecare
self-pay selfpay uninsured
sliding reduced discount afford affordable low-income income
payment pay paying card cards credit debit check checks cash hsa fsa bill billing money
location locations address located where directions find state states
parking park parked lot car cars ticket tickets meter
bus transit metro drive transportation
records record file chart notes copy copies printed printing print paper pages page
crisis emergency emergencies urgent suicidal suicide 988 911 hotline helpline lifeline line
phone number call telephone ring reach
email e-mail mail
fax faxes
paperwork forms form intake questionnaire documents
fill complete finish submit
first new initial evaluation assessment intake
bring need
medication medications meds medicine prescribe prescription prescriptions psychiatrist
  script scripts
  antidepressant antidepressants ssri ssris
therapist therapists clinician clinicians counselor counselors doctor doctors provider providers
  psychologist staff team human person someone
teen teens teenager teenagers adolescent adolescents child children kid kids minor minors
  son daughter age aged year years
spanish espanol bilingual speak speaks speaking language languages
portal app website online
device devices computer laptop tablet camera
download install app apps
internet connection wifi wi-fi signal
drop drops dropped disconnect disconnected disconnects freeze freezes frozen lag cut cuts
  fail fails failed
letter letters
consent permission sign signature approve approval
message messages text texts voicemail
respond reply response back return hear
accessible wheelchair elevator stairs
superbill receipt reimbursement out-of-network itemized
"""

GROUPS_ES = """
costo costos cuesta cuestan precio precios tarifa tarifas cargo cargos cobran cobra cobro pagar pago
cancelar cancelacion cancelaciones cancelo
cambiar reprogramar mover
faltar falto falta faltar
tarde tardia tardio retraso retrasado
cita citas sesion sesiones consulta
horario horarios abre abren abierto abierta cierran cerrado cerrada hora horas
sabado sabados domingo domingos fin semana
seguro seguros aseguradora aseguradoras aceptan acepta
escala ingresos descuento
direccion ubicacion donde ubicados encuentran
estacionamiento estacionar parqueo aparcar
video telesalud virtual linea zoom
crisis emergencia urgencia suicidio suicida 988 911
telefono llamar numero
espanol espanola hablar habla hable hablan idioma bilingue
espanol espanola
terapeuta terapeutas consejero psicologo doctor clinico terapia
enlace link vinculo
recibir recibira recibe mandan mandar manden enviar envian envien
pago pagar dinero efectivo tarjeta
barato baratos bajo bajos economico economicos escala descuento
recepcion recepcionista persona
avisar aviso avisenos anticipacion
normal regular individual estandar comun
"""


@lru_cache(maxsize=2)
def groups(language: str) -> dict[str, frozenset[str]]:
    """stem -> the stems of its group (without itself), for ``language``."""
    table = GROUPS_ES if language == "es" else GROUPS_EN
    lines: list[str] = []
    for line in table.strip("\n").splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line  # an indented line continues the group above
        else:
            lines.append(line)
    out: dict[str, set[str]] = {}
    for line in lines:
        stems = {stem(w, language) for w in fold(line).split()}
        for s in stems:
            out.setdefault(s, set()).update(stems - {s})
    return {k: frozenset(v) for k, v in out.items()}
