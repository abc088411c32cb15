"""Understanding patient messages: keywords, safety, replies, languages, flags (table-driven).

Quality numbers live in docs/QUALITY.md (tests/eval/eval_intents.py); these tests pin
the rules the issue states and every example sentence it gives, not thresholds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from frontdesk.agent import lexicons
from frontdesk.agent.intent_model import NaiveBayes, read_examples
from frontdesk.agent.keywords import bare_keyword, normalize
from frontdesk.agent.safety import is_crisis
from frontdesk.agent.understand import LONG_WORDS, detect_language, understand
from frontdesk.domain.intents import PRIORITY, Intent, Understanding, strongest

I = Intent  # noqa: E741 (short for the tables)

# --- carrier and reply keywords ----------------------------------------------------------------

KEYWORDS = [
    # text, intent, carrier_cancel, carrier_opt_in
    ("STOP", I.OPT_OUT, False, False),
    ("stop", I.OPT_OUT, False, False),
    ("Stop.", I.OPT_OUT, False, False),
    (" STOPALL ", I.OPT_OUT, False, False),
    ("UNSUBSCRIBE", I.OPT_OUT, False, False),
    ("END", I.OPT_OUT, False, False),
    ("QUIT", I.OPT_OUT, False, False),
    ("REVOKE", I.OPT_OUT, False, False),
    ("OPTOUT", I.OPT_OUT, False, False),
    ("CANCEL", I.OPT_OUT, True, False),
    ("cancel", I.OPT_OUT, True, False),
    ("START", I.OPT_IN, False, True),
    ("UNSTOP", I.OPT_IN, False, True),
    ("HELP", I.HELP, False, False),
    ("INFO", I.HELP, False, False),
    ("C", I.CONFIRM, False, False),
    ("c", I.CONFIRM, False, False),
    ("Y", I.CONFIRM, False, False),
    ("YES", I.CONFIRM, False, True),
    ("CONFIRM", I.CONFIRM, False, False),
    ("SÍ", I.CONFIRM, False, False),
    ("SI", I.CONFIRM, False, False),
    ("N", I.CANCEL, False, False),
    ("NO", I.CANCEL, False, False),
    ("R", I.RESCHEDULE, False, False),
    ("RESCHEDULE", I.RESCHEDULE, False, False),
    ("CAMBIAR", I.RESCHEDULE, False, False),
    ("👍", I.CONFIRM, False, False),
    ("👍🏽", I.CONFIRM, False, False),
    ("✅", I.CONFIRM, False, False),
    ("👎", I.CANCEL, False, False),
    ("BAJA", I.OPT_OUT, False, False),
    ("AYUDA", I.HELP, False, False),
]


@pytest.mark.parametrize(("text", "intent", "carrier_cancel", "carrier_opt_in"), KEYWORDS)
def test_bare_keywords(
    text: str, intent: Intent, carrier_cancel: bool, carrier_opt_in: bool
) -> None:
    got = understand(text)
    assert (got.intent, got.is_keyword) == (intent, True)
    assert got.carrier_cancel is carrier_cancel
    assert got.carrier_opt_in is carrier_opt_in
    assert got.evidence[0].rule.startswith("keyword:")


def test_bare_cancel_is_an_appointment_cancel_where_cancel_is_no_carrier_keyword() -> None:
    got = understand("CANCEL", bare_cancel_is_opt_out=False)
    assert (got.intent, got.is_keyword, got.carrier_cancel) == (I.CANCEL, True, False)


@pytest.mark.parametrize(
    "text", ["stop please", "please cancel my appointment", "yes I'll be there", "C u then"]
)
def test_a_sentence_is_not_a_bare_keyword(text: str) -> None:
    assert bare_keyword(text) is None
    assert understand(text).is_keyword is False


# --- the issue's and the task's example sentences ----------------------------------------------

EXAMPLES = [
    # issue 5
    ("can't make it thursday", I.CANCEL),
    ("what's your late cancel fee?", I.QUESTION),
    ("honestly I don't see the point anymore", I.CRISIS),
    ("I'm NOT cancelling", I.CONFIRM),
    ("stop texting me", I.OPT_OUT),
    ("I won't be around for next week's session", I.CRISIS),
    ("I've been giving my things away", I.CRISIS),
    ("took too many of my pills", I.CRISIS),
    ("this traffic is killing me, 5 min late", I.OTHER),
    # issue 4
    ("please cancel my appointment", I.CANCEL),
    # added after the fifth blind set, in other words
    ("Yes! Is there parking at the Elm Ave office?", I.CONFIRM),
    ("can't do 10am now, anything earlier?", I.RESCHEDULE),
    ("friday doesn't work for me anymore, monday or tuesday?", I.RESCHEDULE),
    ("my daughter hit STOP by mistake on my phone, add me back please", I.OPT_IN),
    ("envié baja por error, quiero seguir recibiendo recordatorios", I.OPT_IN),
    ("wondering if you take Medicaid", I.QUESTION),
    # the task
    ("what's the point of going on", I.CRISIS),
    ("Mi hijo dice que quiere morirse. ¿A qué número llamo?", I.CRISIS),
    ("mi esposo dice que ya no quiere vivir", I.CRISIS),
    ("se quiere morir de risa con ese video", I.OTHER),
    ("Yes, sign me up for the text reminders.", I.OPT_IN),
    ("Sí, activen otra vez los mensajes por favor", I.OPT_IN),
    ("Have a good weekend!", I.OTHER),
    ("kiero kanselar la sita del lunes", I.CANCEL),
    ("I'm dying to get in earlier", I.RESCHEDULE),
    ("my boss will kill me if I miss work", I.OTHER),
    ("no need to reschedule, see you then", I.CONFIRM),
    ("stop texting me, I want to die", I.CRISIS),
    ("remove me from this list", I.OPT_OUT),
    ("no more messages", I.OPT_OUT),
    ("cant make it 2mrw", I.CANCEL),
    ("ill b there", I.CONFIRM),
    ("can I talk to a real person", I.HELP),
    ("is this a bot?", I.HELP),
    # constructs added in session 6; some echo the blind-set message that led to them (those
    # sets are seen now), and each stands for a general line in the lexicons
    ("my sister keeps saying she doesn't want to be alive anymore, who do I call", I.CRISIS),
    ("been leaning over the balcony railing a long time every night", I.CRISIS),
    ("i just want to delete myself", I.CRISIS),
    ("hoy es el día. perdón.", I.CRISIS),
    ("me corté el brazo a propósito otra vez", I.CRISIS),
    ("me corté el dedo cocinando", I.OTHER),
    ("kill the text reminders please, email is fine", I.OPT_OUT),
    ("oops didn't mean to unsubscribe, resume please", I.OPT_IN),
    ("who is texting me", I.HELP),
    ("I'm done. Done with these texts, stop sending them", I.OPT_OUT),
    (
        "to be clear I am not thinking of hurting myself, the nightmares are just back",
        I.CLINICAL_CONCERN,
    ),
    ("my brother says he wants to make it stop for good", I.CRISIS),
    ("mi hermano está en el techo y dice que va a saltar", I.CRISIS),
    ("relapsed with self-harm last night, it was bad", I.CRISIS),  # the hyphen joins
    ("I am 2 years clean from self-harm, do you run DBT groups?", I.QUESTION),
    ("my therapist is gonna kill me if I forget again lol, turn reminders back on", I.OPT_IN),
    ("i keep banging my head against the wall when the thoughts get loud", I.CRISIS),
    ("the anxiety won't let me leave the house lately", I.CLINICAL_CONCERN),
    ("La ansiedad no me deja salir de la casa", I.CLINICAL_CONCERN),
    ("mi esposo no me deja salir de la casa", I.CRISIS),
    ("how high is the bridge on route 9 anyway", I.CRISIS),
]


@pytest.mark.parametrize(("text", "intent"), EXAMPLES)
def test_examples_from_the_issues(text: str, intent: Intent) -> None:
    assert understand(text).intent is intent


# --- safety: recall first, benign look-alikes are not crises -----------------------------------

CRISIS = [
    "I want to kill myself",
    "I've been thinking about suicide",
    "I wish I was dead",
    "i wanna die",
    "kms",
    "I WANT TO DIE",
    "im going to kil myself",
    "I cut myself last night",
    "I've been stockpiling my pills",
    "Everyone would be better off without me",
    "I can't take it anymore",
    "I wrote a goodbye note",
    "I want to hurt someone",
    "My boyfriend hits me",
    "He threatened to kill me if I leave",
    "I'm not safe at home",
    "My husband will kill me if he finds out I'm in therapy",
    "Quiero morirme",
    "Ya no quiero vivir",
    "Me quiero matar",
    "Me corté los brazos anoche",
    "Me tomé muchas pastillas",
    "No voy a estar para la próxima sesión",
    "Mi esposo me pega",
    "¿Para qué seguir?",
    # constructs added after the fifth blind set, in other words than its messages
    "I gave my cat to my neighbour, she'll take better care of her than I could",
    "He'll break my arm if I go to therapy again",
    "I've made my peace with everything",
    "my friend just took a bunch of pills and won't talk to me",
    "the voices keep telling me to hurt my mom",
    "my girlfriend says she will end it if I leave her",
    "thanks for everything. none of this is your fault",
    "if I'm still alive by friday I'll be there",
    "I already chose the bridge",
    "Me volví a cortar anoche",
    "estoy en el puente",
    "Mi novio me va a matar si se entera",
    "el padrastro de mi amiga la toca",
    "mi hermana dice que se va a matar",
    "las voces me dicen que lastime a mi hijo",
    "nos vemos el lunes si sigo viva",
    "mi amigo se tomó todas sus pastillas",
    "mi ex me quiere matar",
    # added after the sixth blind set, in other words
    "my boyfriend keeps a gun under the bed and pointed it at me",
    "they took my passport and say I owe them for the apartment",
    "her stepdad touches her when mom is at work",
    "some guy has been following me home from the bus every night",
    "I'm afraid I might hurt the baby when she won't stop crying",
    "took like 20 of my xanax",
    "the only thing keeping me here is my dog",
    "tengo una soga guardada en el garaje",
    "me quitaron el pasaporte y me obligan a trabajar",
    "el novio de mi hermana le pega a su niño",
    "I'm done with all of it.",
    "I have a plan and I'm going to do it this weekend",
    "mi hermano se mató anoche y yo tampoco quiero seguir",
    # Danger to life that is medical: the crisis message names 911.
    "my baby is turning blue and not breathing right",
    "soaking through a pad every hour since the birth and I feel faint",
    "chest pain and my left arm is numb, should I still come in?",
    "mi hijo no respira bien, está morado",
    "sangrado abundante después del parto, estoy sola",
    "been thinking about dying a lot lately",
    "burned my arm with a lighter on purpose last night",
    "last text from me. please look after my dog",
    "I will not bother anyone much longer",
    "the carer hits me when nobody is here",
    "he said he will bury me in the backyard if I leave",
    "the coach told him to keep it a secret",
    "whats the ld50 of tylenol",
    "lol what happens with my appt if im dead. asking for me",
    "si me regresan a la cárcel me mato",
    "mi hijo se tomó el líquido de fumigar",
    "i keep wanting to drive the truck into the river when it floods",
    "he shoved my son into the wall last night",
    "been stocking up my sleeping pills for a while now",
    "someone slipped something in my drink and i cant feel my legs",
    "my resting heart rate is 38 and I'm freezing all the time",
    "I fell two days ago and can't get up, crawled to the phone",
    "no sé si voy a llegar hasta el martes",
    "no need call me back anymore. i finish with everything",
    "found his goodbye list, who gets his guitar and his games",
    "she mixed wine with her xanax again and is barely awake",
    "mi hijo intentó colgarse anoche",
    "si no pagamos nos matan, dijeron",
    "esta es mi despedida, gracias por todo doctor",
    "me he tomado una caja entera de orfidal",
    "dont book me for next month. there won't be a next month",
    "drank a bottle of wine on top of my lithium, I'm in the ER",
    "he turned on all the gas burners and I found him asleep in the kitchen",
    "my husband wandered off in the night and we still haven't found him",
    "driving out to the range alone w my rifle and not planning on driving back",
    "been researching painless ways all night",
    "ya dejé todo organizado, las claves, el testamento, la carta. gracias por todo",
    "el tipo de tinder me ha seguido hasta el portal y sabe dónde vivo",
    # Unsure of attending is never a confirmation, and the veiled kind is still a crisis.
    "idk if i'll still be around by next week honestly",
    "30 years on the job. seen enough. ready to check out",
    "tired. real tired. not the sleep kind",
    "took the whole week's worth of my heart pills at once",
    "38 weeks and the baby hasn't moved all day, seeing spots",
    "NO ENCUENTRO RAZÓN PA SEGUIR",
    "one of the staff hits the kids when no one's around",
    "they found my new address, there's a car outside",
    "I wanted to write while I still can. Please do not blame yourself.",
    "the home aide slapped me this morning when I spilled my tea",
    "el coach me toca cuando estamos solos en la oficina",
    "was 90 days sober, used again tonight, way too much. feel like im fading",
    "the 3am plan keeps getting more detailed. that scares me",
    "los de la colonia dicen que si me ven me matan",
    "my friend call me crying and say tonight he hang himself with the sheet",
    "they send me photo of my house here. they say they coming",
    "i keep having this thought of leaving the gas on when i leave mom's",
    "i've arranged everything for mom's care after i'm gone",
    "found my 6 yr old playing with my husband's loaded pistol again",
    "the rifle is loaded and in the cab. not for deer this time",
    "keep thinking the pond behind the barn is deep enough",
    "she drank bleach from under the sink after they fought",
    "they had to pump his stomach last night",
    "im gonan do somethig stupid tonight",
    "no tengo ganas de seguir.",
    "no voy a pasar otro año sin ella",
    "filled the same script at 3 different pharmacies this week",
    "gave away everything i own. only thing i kept is the glock",
    "the unalive thoughts are back",
    "if this is my life from now on i'd rather not have one",
    "thinking of skipping dialysis and letting it take me",
    "my brother drank chlorine, we are at the ER",
    "why pay you guys, i'll be dead before the next bill anyway",
    "a veces pienso en estrellarme con el carro en la autopista",
    "on the bridge thinking about just stepping off",
    "drove home with my eyes shut for a few seconds at a time, felt invincible",
    "what's the crisis line number again? it's for me",
    "kept half my pills in a drawer just so i have options",
    "week review: would not recommend being alive",
    "i'd like to order a large pizza to my address please hurry",
    "the old habit is back, the sharp kind",
    "he reads everything on my phone, don't text back, i'll call when i can",
    "he's drunk and screaming at the kids again",
    "considering a more permanent exit",
    "about question 9 on the form: it's nearly every day now",
    "took a handful of lithium after the hearing",
    "cant stop thinkin abt dying",
    "last prayer. see you all on the other side",
    "él revisa todos mis mensajes, no me contesten, les marco cuando pueda",
    "compré una pistola. no tengo enemigos",
    "si lo veo mañana no respondo de mí",
    "pagué todas las deudas y dejé cartas",
    "if i don't show up it's not because i forgot",
    "🔫🙃 long week",
    "per my safety plan: ideation is at a 7 today",
    "this is me doing step 4 of my crisis plan",
    "got the kitchen knife out again, just sitting here with it",
    "I am want die today",
    "got some blues off a new guy, doing them alone tonight",
    "tell the doctor i not come more. i am finish.",
    "i miss my grandma so much, i just want to go be with her now",
    "on the bridge over the highway just thinking",
    "ella lo amenazó con golpearlo si sale de la casa",
    "no llego. chau a todos",
    "take me off the schedule for good, there won't be a me to schedule",
    "the pils r in my hnd",
    "pressed the pen into my palm until it bled",
    "my wife said something about ending it if the pain doesn't stop",
    "the building will burn, i have the gas cans",
    "hands have cuts and i dont remember doing it",
    "the drill is charged",
    "sorry for the emojis, in case he checks my phone",
    "he's outside",
    "how do i get my little brother out of that house",
    "flowers at my job. i never told anyone where i work",
    "a barn fire with me in it would fix things",
    "this time i'm not coming back from it",
    "the razor is back out",
    "ima end it tonight",
    "easy it would be to turn the wheel into the divider and be done",
    "pienso en tirarme del puente",
    "mi hija dice que se quiere morir",
    "lo encontré buscando en internet cómo ahorcarse",
    "trabajamos sin pago y si nos vamos le hace daño a la familia",
    "quiero descansar para siempre",
    "pienso en hacerle daño de verdad",
    "el entrenador lo toca donde no se debe",
    "me siguió hasta el metro",
    "pills in hand. done.",
    "sliced my knuckles up on purpose and it felt good",
    "i was in the ER after i OD'd",
    "is it normal to want the plane to go down",
    "tengo pensamientos de hacerle daño a mi bebé",
    "después del 15 no voy a estar. no es un viaje",
    "is it ok to tell the front desk i've been wanting to die",
    "how do i get my records sent to my family after i'm gone",
    "they gave me 6 months so i figure why wait",
    "can i cancel the rest of my sessions and... everything",
    "not going to make anything anymore tbh",
    "mi hijo se tomó un frasco entero de pastillas",
    "C. also bought a gun today, not for hunting",
    "no. and I mean for good this time",
    "my dead brother keeps telling me to swallow the whole bottle and go be with him",
    "the voices keep telling me to jump off the garage roof",
    "hung an extension cord from the shower rod last night to see if it would hold",
    "don't bother with the payment plan call, the balance won't matter",
    "ER discharge tomorrow after what I tried to do to myself",
    "heading up to the roof of my building to see the city one final time",
    "honestly wish i had driven into the guardrail on the way home",
    "stop reminding me. i will be checking out before thursday",
    "been up 4 nights, the shadows on the road aren't real but I'm still driving",
    "havent slept in 6 days and im still on the highway hauling",
    "if i do something to myself will my wife still get billed?",
    "C see you then. unless i go through with it before thursday",
    "keeping my knife on me at work in case they try something again",
    "gonna be end of watch before my next appointment",
    "not going to make it thursday. not going to make it at all honestly",
    "the voices at night say the neighbors are in on it and i have to take care of them first",
    "i feel like i need to smother the baby so she stops crying. scared. call me",
    "my brother overdosed again, found him not breathing in the garage",
    "gave my guitar to my nephew, he'll need it more than me soon",
    "after tonight i'm going to sleep for a very long time",
    "ya no aguanto, mañana acabo con todo",
    "me dio pena haber amanecido otra vez",
    "nos vemos el martes, si sigo con vida",
    "the voices on the radio say my coworkers are poisoning my lunch",
    "took the whole month of pills at once last night because i wanted to sleep",
    "something keeps telling me i need to destroy myself for the mistake",
    "will they still bill me if i am dead lol. not joking",
    "up on the scaffold i keep thinking about unclipping my harness",
    "don't bother rescheduling, i won't be anywhere after friday",
    "the tv is talking to me again, it says i have to burn the garage down",
    "her stepdad goes into her room at night and she is scared to go home",
    "my son swallowed a handful of his sister's pills, we are in the ER",
    "i see the chips in my arm, got the knife ready to dig them out",
    "the knife in my truck and its not for work anymore",
    "made a list of who gets my guitars and records",
    "mi hijo se quiso ahorcar anoche, estamos en urgencias",
    "me he estado cortando otra vez, cada vez más seguido",
    "si no me despierto mañana, mejor. así descanso",
    "if i text you the word taco can someone call 911 to my address, he's drunk again",
    "can you call the police for me? he's outside the door",
    "he took the door knob off from the inside, I can't get out of the bedroom",
    "if a patient is deceased, is the family billed for the missed session? asking for planning",
    "si una persona se muere antes de la cita, ¿le cobran a la familia?",
    "estuve buscando qué altura tiene el puente nuevo",
    "scrubbed my wrists with steel wool until they bled, it helps",
    "at least my kids get the line of duty benefit if something happens on a call",
    "the vodka and pills didnt work last night so here i am",
    "i wont make it thursday, sorry in advance for the mess",
    "they forced the pledges to drink until we passed out",
    "final goodbye, thank you for everything",
    "crashed my truck on purpose into the guardrail",
    "driving home without my seatbelt hoping a deer decides for me",
    "how much of my meds is enough to not wake up",
    "I do not expect to be here by the end of the month, please cancel",
    "ya sé dónde amarrarla, la manguera está lista",
    "estoy casi segura de que la cuidadora le pega a mi mamá",
    "I keep pressing on the cuts so they hurt more",
    "left a note for my husband in the garage, call him tomorrow if he doesn't find it",
    "I had the urge to shake the baby so hard last night",
    "gave away my guitars and my dog this week. cancel my sessions",
    "I know exactly how much insulin it would take",
    "C. sorry in advance for what's going to happen",
    "stopped my dialysis. I want this to be how it ends",
    "pulled my port out on purpose last night",
    "my uncle comes in my bed at night and says it's a game and not to tell",
    "la enfermera de la noche le pellizca a los abuelitos",
    "si me revocan, primero me quito la vida",
    "mi papá dice que piensa en colgarse",
    "sorted out my will and cut off my phone line, you won't be able to reach me after friday",
    "the man who drives her home is a registered sex offender",
    "my neighbour's nanny never leaves the flat, I think she is being held there",
    "her coach threatened her if she tells anyone about the weigh-ins",
    "bought a rope last week and I'm still deciding things",
    "ya arreglé todo, perdónenme. el seguro de vida es para mis hijos",
    "me quemo con el encendedor cuando no aguanto",
    "el profe la amenazó si nos cuenta algo",
    "el dueño se metió a mi cuarto anoche y me tocó",
    "le dejé la gata a mi hermana y las cosas en orden. gracias por todo, adiós",
    "been saving a few pills from every refill. I just like knowing they're there",
    "brought the weed killer jug home and I keep staring at it",
    "found where my grandpa hid his shotgun. funny how things line up",
    "made up my mind this week and I feel calm. this is the last one I'll confirm",
    "pocketed two vials of fentanyl from the cart, just want the option there",
    "drove home after a double hoping I'd hit a tree",
    "her dad left her home alone all weekend again, she's 5",
    "my brother held her down and cut her hair off",
    "grandpa says he'll pray the gay out of him",
    "got kicked out, nowhere to sleep tonight",
    "we took the inside handle off her bedroom door until she listens",
    "if they cut me off I don't see the point of sticking around",
    "he said if i tell anyone he'll hurt my mom",
    "honestly I'd rather not wake up tomorrow",
    "he won't give her meals until she signs her pension check over to him",
    "found some pills at the park, idc what's in them",
    "no formula left and the baby's been crying for hours, i cant get up",
    "he took his belt to our 8 year old, it left welts",
    "probably my last session anyway. left a letter for you in an envelope",
    "she had 6 drinks and grabbed the keys with the kids in the back",
    "gonna leave him in the car seat during my session, he naps better",
    "tell the doctor I know what car she drives",
    "I've worked out how I'd do it if the scan is bad",
    "he keeps saying he's going to throw himself off the roof",
    "there was a bruise on her arm and she flinched when the aide came in",
    "my brother texted 'look after mom' and now he's not answering",
    "what's the lethal dose of my sleeping pills",
    "the aide leaves him sitting in soiled clothes",
    "the guy says she owes him 10k and makes her work, she can't leave",
    "my son shoved my mother down the stairs",
    "un señor que conocí me va a llevar a trabajar lejos, sin decirle a nadie",
    "dijo que va a volver por ella esta noche",
    "dice que se va a deshacer de el bebé",
    "el padrastro lo aventó contra la pared",
    "el dueño me cobra con favores y si no me echa",
    "want the papers done so the kids are covered after I do what I need to do",
    "I keep thinking about how easy it would be at the range",
    "do you talk to the family after somebody passes? I'll leave your number with my wife",
    "this is probably my last reminder. you did everything right",
    "found the gas hob on, no flame, and mum asleep",
    "mum says she's finished now and has said her goodbyes",
    "been reading what his leftover morphine would do",
    "she left her 3 yr old alone for two days",
    "my husband took his gun into the shower this morning",
    "her uncle has been coming in her room at night",
    "they found her with a belt around her neck",
    "took like 10 of my xanax last night to sleep",
    "he keeps my insulin and only gives it back if I behave",
    "bought a jug of paraquat, it's in the barn",
    "my bookie is sending people to the house tomorrow",
    "la mamá la deja sola días enteros sin nada de comida",
    "mi esposo dice que si no son míos no son de nadie",
    "su papá lo sigue amarrando en el corral",
    "my 15 year old niece has a boyfriend who is 27",
    "honestly I'm done with everything. just done",
    "her boyfriend shook the baby when he wouldn't stop crying",
    "I keep thinking about drinking the bleach under the sink",
    "gave my nephew my dress blues and the purple heart this week",
    "made sure the life insurance is paid up so my kids are covered",
    "hazing tonight, last year a pledge ended up in the ICU",
    "I know how many I need now, been saving them",
    "tonight I finish plan",
    "he said if I tell the therapist he will hurt the baby",
    "the stairs would be the simplest way out",
    "the guy from the gym followed me home again",
    "ending it saturday, cancel my appts",
    "everyone's better off without me",
    "I've started counting my insulin pens again",
    "ya le di la troca a mi primo, así queda todo organizado, gracias por todo, adiós",
    "a un novato le hicieron beber lejía",
    "llevo toda la noche viendo el puente",
    "el líder le dijo que no me contara nada",
    "será la última vez que me ven",
    "running late, crushing pain in my chest and my left arm is tingly",
    "see you weds, my face feels droopy and my words are coming out funny",
    "my throat is swelling up after the new pills, hard to breathe",
    "I fell in the kitchen last night and can't get up, cancel please",
    "the baby rolled off the bed and keeps vomiting, can we move it",
    "he took a hit at practice, now slurring and threw up twice",
    "she passed out after practice and her lips looked blue",
    "took 20 laxatives before the weigh in, cancel thursday",
    "got jumped over the money I owe, peeing blood today",
    "the crew locked me in the conex and said they'd leave me all weekend",
    "didn't jump obviously lol, might go back up tonight",
    "my daughter says she's going to take all her pills if we move",
    "left a note about the life insurance in my desk, cancel next week",
    "I think I'm being followed, same gray truck behind me every day",
    "a man at every one of my meets said my room number in the hotel lobby",
    "kids are in the car in the garage, it's only been 2 hrs",
    "he said he'd burn the house down with me in it",
    "her boyfriend whoops her 6yo with an extension cord",
    "she drives the kids drunk on her weekends",
    "the guy in my bunk showed me a shank, says he's gonna stab the manager",
    "I stopped taking the meds, saving them up in case the hearing goes bad",
    "no food in the house and the heat is off, it is very cold",
    "my brother takes dad's social security checks and shoves him when he asks",
    "the bakery is done, and honestly so am I",
    "after Sunday she'll be the one handling everything",
    "me duele el pecho y me baja por el brazo izquierdo",
    "tiene la cara caída y no puede levantar el brazo",
    "me caí en el baño y no me puedo levantar",
    "el bebé se cayó de la cama y está vomitando",
    "se desmayó y el pulso está muy lento",
    "ojalá ya no despertar mañana",
    "mi ex me ha estado siguiendo al trabajo",
    "¿el seguro sigue pagando si uno ya no está?",
    "cut on myself again, it bled through two towels",
    "a white truck's been behind me since i left the house",
    "he quit drinking cold turkey, now seeing bugs crawling on the walls",
    "the youth pastor takes her for private prayer and she won't talk to anyone",
    "haven't eaten in 9 days, passed out and hit my head, seeing double",
    "I drive that road too fast at night hoping I don't make the turn",
    "the voices told me about the man on the bus, I have scissors in my bag",
    "I found letters addressed to everyone in her drawer",
    "won't be using this phone much longer, wrapping everything up before the 15th",
    "since the injection his temp is 103 and he's stiff and not answering me",
    "I can't breathe lying down since they upped the clozapine",
    "on a road trip with my 4 year old, nobody needs sleep, doing 95 lol",
    "my head is bleeding and I keep throwing up, can I rebook",
    "she's at the ER getting her jaw looked at, it was the usual",
    "he's been standing at my stop for 3 days just staring",
    "remember the word we picked for my safety plan? umbrella",
    "he's been circling the block by the shelter since noon",
    "she told staff she has a way out saved up",
    "I think my phone has a tracker, he sends a picture of where I am standing",
    "he put his hand around my throat for a moment but stopped",
    "he has burns on both palms like a stove grate, he's 2",
    "she's on runaway status, last seen at a motel with adult males",
    "he screamed for hours and I shook him hard, he's 3",
    "the lanyard is on the closet rod, tested it with my weight",
    "if the patient is no longer around does the family get billed? asking for me",
    "chest pressure going into my jaw for an hour, sweating",
    "a parent left a voicemail: I know which car is yours",
    "my gf and I made a pact, if things don't get better by new years we're done",
    "want to pull over in the desert and let the heat take care of it",
    "el mismo que le disparó a mi primo está parado en frente del edificio",
    "oye la voz de los muertos diciéndole que tiene que ir con ellos",
    "el tío no lo deja salir y le quita el sueldo",
    "manejé a 180 con ganas de no llegar",
    "desde la inyección tiene fiebre y está tieso",
    "me dijo que si voy a la corte no salgo viva",
    "anoche me quebró dos dedos",
    "le apretó el cuello al niño en la visita",
    "traigo una ampolleta de cloruro de potasio en la bolsa",
    "me quise aventar del puente",
    "la palabra que acordamos en el plan de seguridad: mariposa",
    "I don tire for this life, e go soon end",
    "she fell in the bathroom and one side of her face is dropping",
    "my cousin says he'll put me in the hospital again",
    "does the insurance pay out if it's self inflicted",
    "one of the staff has been hitting a resident who can't speak",
    "nothing but water for 9 days, fainted on the stairs twice",
    "a lady walking in the snow with no coat and no shoes",
    "the propane ran out 3 days ago and she's confused and won't eat",
    "a car has been driving slow next to me and keeps turning when i turn",
    "the bridge keeps calling me lately",
    "he shoved mom into the cabinet when she wouldn't sign",
    "told him to save the plot next to mom for me, might need it sooner than he thinks",
    "executor info is in the envelope on my desk",
    "I'm leaving tonight, somebody else can find him",
    "I think she swallowed a button battery, she's drooling",
    "she puts him in the dark closet and sits on him",
    "she put his hand under the hot tap to teach him",
    "ya no suda y habla cosas que no tienen sentido",
    "el contratista tiene nuestros pasaportes y no nos deja salir",
    "el niño de 4 años se queda solito en la traila",
    "mi esposo pega a mí y al niño con el cinturón",
    "los mareros ya saben dónde vivo",
    "fumigaron con nosotros adentro y mi compañera casi no puede respirar",
    "la encontré con el cinturón atado a la barra del armario",
    "mi abuelita no tiene agua ni luz y ya casi no se levanta",
    "un señor lleva siguiéndome desde la parada",
    "el puente de la avenida me anda llamando",
    "ya repartí la ropa de mi esposo y la mía también",
    "sleeping in my car, 9 degrees, can't feel my feet and the heater is broken",
    "they stopped buying her insulin because it's expensive",
    "the policy's waiting period ended so it will pay out no matter what",
    "pwede po bang i-move? parang ayoko na",
    "she keeps putting her jewelry into envelopes with each grandkid's name",
    "she locks my son in the dark closet when he cries",
    "my things are all in boxes with names on them for people",
    "ate peanuts, my throat feels tight and my lips are swelling, epipen expired",
    "he sleeps with his hand on the gun and says he has a plan B",
    "a woman is lying on the ground by the bus stop, not moving",
    "she is throwing up something that looks like coffee grounds",
    "the driver slapped a little nonverbal boy across the face",
    "he said next time he'll use the big knife",
    "the night nurse smelled like alcohol and knocked his trach off the vent",
    "if he goes I'm going with him, I've already figured out how",
    "his pump is alarming and he's floppy and barely breathing",
    "he left the gas on with the windows closed and said era mejor así",
    "my nephew is 7 and home alone this week",
    "el padre volvió a entrar en mi cuarto mientras dormía",
    "llevo una semana cortándome otra vez",
    "me he desmayado en la ducha y me di en la cabeza, estoy sola",
    "me desperté sin ropa en el coche de un chico",
    "cada noche le pido a Dios no despertarme",
    "el bebé no moja el pañal desde ayer",
    "la vi tapándole la boca y la nariz",
    "dice que si lo denuncio me mata",
    "el peor dolor de cabeza de mi vida y se me duerme la cara",
]


@pytest.mark.parametrize("text", CRISIS)
def test_crisis(text: str) -> None:
    got = understand(text)
    assert got.intent is I.CRISIS
    assert got.hands_off
    assert is_crisis(text)


BENIGN: list[tuple[str, Intent | None]] = [
    ("this traffic is killing me, 5 min late", I.OTHER),
    ("I'm dying to get in earlier", I.RESCHEDULE),
    ("my boss will kill me if I miss work", I.OTHER),
    ("Ugh this heat is killing me", None),  # the model guesses; anything but a crisis
    ("my phone died, this is my new number", I.OTHER),
    ("Killing time in the lobby", None),
    ("I'll be there, shoot me a text if anything changes", I.CONFIRM),
    ("I cut my hand cooking and need stitches, can't come today", I.CANCEL),
    ("I won't be around next week, I'm on vacation", I.CANCEL),
    ("Do you treat people who have lost someone to suicide?", I.QUESTION),
    ("Me muero de ganas de verla, ahí estaré el jueves", I.CONFIRM),
    ("El tráfico me está matando, llego tarde", I.OTHER),
    ("Mi jefe me va a matar si llego tarde", I.OTHER),
    ("Me corté el pelo, nos vemos mañana", None),
    ("se va a matar de risa con el chiste, nos vemos el martes", None),
    ("me estoy matando trabajando esta semana jaja", None),
    ("my glue gun broke, can we move to 4pm?", None),
    ("en la mañana no me dejan salir del trabajo, ¿tienen en la tarde?", None),
    ("they don't let me leave work early on fridays, anything at 6?", None),
    ("what's the late fee? don't want to die of shock when the bill comes", I.QUESTION),
    ("thanks for trying to find me a slot, see you thursday", None),
    ("I'm done with all of it - the reminders, the surveys, the texts. Remove me.", I.OPT_OUT),
    ("cancel friday please, the scan came back bad. I'll call when I have a plan", I.CANCEL),
    # Bereavement by suicide, asked about: staff read it, no urgent page (topic line + veto).
    ("¿tienen grupos para familias? mi tío se mató hace dos años y mi tía quiere ir", None),
    ("see you at 4, we have rifle drill right before so I'll be in uniform", None),
    ("feeling really low since the move, no thoughts of hurting anyone. can Dr. Lee call?", None),
    ("that's my last text for today, see you tomorrow!", None),
    ("her seizure med makes her so sleepy, can we talk about it monday?", None),
    ("me voy a matar estudiando este finde, nos vemos el lunes", None),
    ("the potholes on your street almost killed my car lol, see you thursday", None),
    ("dont send me texts before 9am", None),
    ("we are going to bury my grandmother friday so I need to cancel", I.CANCEL),
    ("my econ final is gonna end me lol, cancel friday", I.CANCEL),
    ("got choked out three times at bjj tonight, loved it. see you thursday", None),
    ("cancel thursday, I'll be in the tree stand with my rifle for opening day", I.CANCEL),
    ("got the rifle sighted in for deer, see you tues", None),
    ("cancel friday, the surgeon is cutting on my knee that morning", None),
    ("the thanksgiving potluck almost killed me, overdosed on pecan pie", None),
    ("the form asks if i ever wanted to hurt myself. answer is still no. do i sign it?", None),
    ("boss said he'd kill me if i didn't close the deal. closed it", None),
    ("my niece works ER nights, stabbings and overdoses every shift, god bless her", None),
    ("hoy cumplo un año sin autolesionarme, solo quería contarlo", None),
    ("mi nieto dice que lo voy a matar del susto con mis audios", None),
    ("i carry a pistol for bears on the trail, where can i leave it?", None),
    ("my nephew was playing call of duty yelling shoot him", None),
    ("'i'm gonna kill you' was meant for my brother, wrong chat", None),
    ("he has to cancel, his boss is gonna kill him if he leaves early", None),
    ("cancel friday, jury duty on a murder trial", None),
    ("my gps keeps trying to kill me", None),
    ("coming from self-defense class, covered in bruises lol", None),
    ("the doctor lo mató de risa con sus chistes", None),
    ("rifle team practice after, my case is locked in the car, is that ok?", None),
    ("please take his number off, he passed in may and won't be needing appointments", None),
    ("the lawsuit settled! wanted to strangle him more than once lol", None),
    ("my therapist would kill me if she knew i was up this late", None),
    ("this heat wave is gonna kill me", None),
    ("la voy a matar por comerse mi alfajor jaja", None),
    ("cancelo mañana, me voy a cazar venado con el rifle", None),
    ("my husband's going to kill me, i left my gloves in your waiting room", None),
    ("wrong box, that was for my brother: gonna kill you for eating my leftovers", None),
    ("rang the bell after round 6 of chemo, i'm DONE!!", None),
    ("turned in my dad's old shotgun at the gun buyback today", None),
    ("cancelling tues for a funeral, great aunt, 97, she had a good run", None),
    ("vigilia toda la noche, el sábado voy a estar muerta jaja", None),
    ("el pastor habló del suicidio de Judas y me acordé de la terapia, estoy bien", None),
    ("stop the texts please, shared phone plan and my wife reads everything", I.OPT_OUT),
    ("this lecture is so boring i'm gonna die lol", None),
    ("my coach said if i miss practice he'll kill me haha", None),
    ("that bot nearly killed me with how slow it was", None),
    ("no estoy pensando en hacerme daño, pero la depresión no me deja salir de la cama", None),
    ("las pastillas me van a matar de lo caras que están jaja", None),
    ("¿reciben referidos de víctimas de violencia doméstica?", None),
    ("después de la maratón voy a estar muerto, ¿me pasan al martes?", None),
    ("si no llego es que mi jefa me mató jajaja", None),
    ("stop the texts pls, they come when I'm dead asleep after my shift", I.OPT_OUT),
    ("my pulse hit 160 on the bike, great workout", None),
    ("my dog looks like he could kill someone but he's a sweetheart, can I bring him?", None),
    ("no self harm that I know of, just withdrawn. could Dr Kim call?", None),
    ("talleres los mató 3 a 0 jaja", None),
    ("can't make it tmrw, new job won't let me leave early", I.CANCEL),
    ("my cat tried to kill me on the stairs again lol, have a good day", None),
    ("el niño se dio una sobredosis de azúcar jaja", None),
    ("hiking Teide nearly killed me, 8 hrs up and down, but what a view", None),
    ("passed my security guard license test! no gun, just a flashlight lol", None),
    ("a customer threw her receipt at me today, cried in the stockroom after. im ok", None),
    ("my son beat me at mario kart, absolutely murdered me. good day", None),
    ("5 or 6 beers a night after shifts. not in danger but i want help cutting back", None),
    ("cancel tmrw, shooting the new safety video and they won't let me out of it", None),
    ("do you have evening hours? residents don't exist before 8pm", None),
    ("mañana no llego, el jefe me tiene muerto con tanto trabajo y me toca cerrar", None),
    ("tengo formación temprano y no me dejan salir, ¿tienes algo en la tarde?", None),
    ("la depresión regresó, no me paro de la cama. nada de hacerme daño, nomás quiero ayuda", None),
    ("sorry, my 6yo took my phone, he keeps threatening to make everyone walk the plank 🏴‍☠️", None),
    ("N. my ex is killing me with all these custody changes, can't come thursday", I.CANCEL),
    ("C. practice killed me at conditioning but ill be there", I.CONFIRM),
    ("have to cancel, my sponsor is gonna kill me if i miss the meeting", I.CANCEL),
    (
        "my supervisor at the distribution center will kill me if I leave early, any chance of 6?",
        None,
    ),
    ("N, the site super will kill me if i leave early again", I.CANCEL),
    ("almost killed myself on your icy front steps last week, is the ramp salted?", None),
    ("took my dad's old rifle out this morning and got a nice buck, first since he passed", None),
    ("my granddaughter killed me in 9 moves at chess, so proud", None),
    ("swallowed a lot of water at the pool lol, running late", None),
    ("the voice assistant keeps listening to me lol, sorry for the weird text", None),
    ("what's the no show fee if i'm dead lol. kidding, car trouble, can i still come?", None),
    ("my PO is gonna kill me, forgot my paperwork. in the lobby now", None),
    ("the attendance lady will kill me if i miss 3rd period again", None),
    ("took a job on a fishing boat, won't be around till spring. please cancel", I.CANCEL),
    ("N, voy a estar muerto después del turno de noche", I.CANCEL),
    ("scrubbed the hotel tubs till my hands ached, running 10 min late", None),
    ("is it ok to call 911 if my mom has a panic attack at night, or is that too much?", None),
    ("gonna die of a caffeine overdose, 3 red bulls already. be there at 4", None),
    ("please cancel, my father died and we had time to say goodbye. I'll call later", I.CANCEL),
    ("basta de recordatorios, ya no los necesito, yo me acuerdo sola", I.OPT_OUT),
    ("moving Thursday? my managing partner will kill me if I leave early", None),
    ("cancel friday, cooking for 200 at the quinceañera, I'm going to die", I.CANCEL),
    ("ill kill you if you pick yasuo again lol wrong chat", None),
    ("my LAST chemo is Tuesday!! so I won't be around for that session, Thursday?", None),
    ("quiero cancelar mi cita del lunes, ya no la voy a ocupar gracias", I.CANCEL),
    ("the pills didnt work for my headache, can i get a refill", None),
    ("after the funeral I will be joining my sister in Texas for a month, please cancel", None),
    ("my toddler comes in my bed at night and I get no sleep", None),
    ("I dont expect to make it on time, traffic on 95", None),
    ("keeping my painkillers in a lockbox now like you said", None),
    ("My mom had cancer and the disease won last week. Please cancel", None),
    ("we will light up the whole office for christmas, come see", None),
    ("quería que fuera la última vez que cancelo, perdón", None),
    ("did suicide drills at practice, legs are jelly, see you thursday", None),
    ("skipping that hearing would be suicide for my case, can we do monday?", None),
    ("my son dented the car on a post and I'm gonna kill him. cancel friday", I.CANCEL),
    ("school pickup and the pharmacy run are gonna kill me tuesday, move me to wed?", None),
    ("le dejé el Canelo a la vecina para la cita, nos vemos mañana", None),
    ("cancel thursday, my advisor will kill me if I miss lab meeting", I.CANCEL),
    ("Dr. Patel is going to kill me, I skipped the worksheets. see you tues", None),
    ("moving my session would be career suicide this week, any time after 6?", None),
    ("stop the texts please, my phone goes off like a machine gun", I.OPT_OUT),
    ("ignore that, the 'gonna strangle him' was about my roommate 😂", None),
    ("mi hija dice que la mato de vergüenza cuando bailo", None),
    ("can we move it so I can be with him for his surgery?", None),
    ("my son isn't allowed to use the phone after 9, text me instead", None),
    ("I always shake the baby bottle before feeding, is that ok?", None),
    ("took 2 of my tylenol for the headache, see you at 3", None),
    ("they're sending guys to the house to fix the roof, can we do 4?", None),
    ("good knowing the crisis line is there. see you friday", None),
    ("I know what I'm doing Saturday, so Friday works", None),
    ("mi novio de 25 años me acompaña a la cita", None),
    ("the imagery from the deposition followed me home, sleeping poorly", None),
    ("my 14 yr old has a 45 minute drive, can we do 4?", None),
    ("not a danger to myself, tired of waking up screaming. can my doc adjust something?", None),
    ("my teen locks himself in his room after visits, no self harm", None),
    ("se quiere morir de la vergüenza cuando lo llevo a la escuela", None),
    ("no es nada grave ni pienso hacerme daño, solo estoy cansada", None),
    ("la pregunta de si alguna vez pensé en hacerme daño, puse que no", None),
    ("mi entrenador dice que me voy a morir cuando vea el calendario", None),
    ("gps keeps sending me down the old road, don't want to die in a pothole", None),
    ("my son is following the treatment plan", None),
    ("mi hijo está siguiendo el tratamiento", None),
    ("not thinkin about hurting myself or nothin like that, just low", None),
    ("si no voy mis compañeros me matan jaja, ¿el lunes?", None),
    ("mi jefe no me deja salir el jueves, ¿el sábado hay?", None),
    ("mi hija me pegó la gripe, cancelo mañana", I.CANCEL),
    ("dice que el examen de mate la mató jaja", None),
    ("meant for my charge nurse: bed 12 is trying to die on us again", None),
    ("voy a disparar en el torneo de tiro con mi papá", None),
    ("she read that Depakote can destroy your liver, what bloodwork?", None),
    ("she won't let me out of her sight since the hearing", None),
    ("parking is murder, circling the block, be there in 5", None),
    ("coming from the gym, I look like I got hit by a truck. confirmed", None),
    ("no, no pienso en matarme ni nada así, nomás ando triste", None),
    ("ya no quiero seguir con la terapia por ahora, cancele las citas", I.CANCEL),
    ("ya no necesito más sesiones, me siento mucho mejor", None),
    ("coming from boxing so I'll look like I got beaten up", None),
    ("coach made us run suicides for an hour, cancel thursday", I.CANCEL),
    ("he says he's going to die every time he has homework", None),
    ("the intake form asks if I've had thoughts of killing myself. I never have", None),
    ("my mom's gonna kill me for saying this but the fish is ugly", None),
    ("ataques de pánico: sudor, no puedo respirar, temblor", None),
    ("Confirm. I'll have a cast, broke my wrist at practice", I.CONFIRM),
    ("that was for my duo, im gonna kill him if he throws one more game", None),
    ("our setlist is all murder ballads, the crowd is gonna die", None),
]


@pytest.mark.parametrize(("text", "intent"), BENIGN)
def test_benign_look_alikes_are_not_crises(text: str, intent: Intent | None) -> None:
    got = understand(text)
    assert got.intent is not I.CRISIS
    assert intent is None or got.intent is intent


CLINICAL = [
    "My anxiety has been really bad this week",
    "Can I take my Lexapro before the session?",
    "The new medication gives me headaches, side effects?",
    "I had a panic attack",
    "I've been feeling really down",
    "I want to talk about what happened with my mom",
    "I'm too depressed to come today",
    "Tengo mucha ansiedad",
    "Me siento peor cada día",
    "skipping meals again, not terrible but wanted you to know",
    "we had a miscarriage in june and i can't stop thinking about it",
    "the grounding exercises aren't working anymore",
    "barely eating lately, lost 12 lbs since the move",
    "I've been drinking more than I should since the layoff",
    "I keep checking the stove 20 times before I can leave",
    "the prazosin makes me dizzy when I stand up, should I keep taking it?",
]


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_concern(text: str) -> None:
    got = understand(text)
    assert got.intent is I.CLINICAL_CONCERN
    assert got.hands_off


# --- priority: crisis > clinical_concern > opt_out > everything else ---------------------------

PRIORITY_CASES = [
    ("stop texting me, I want to die", I.CRISIS),
    ("Cancel my appointment. I'm going to end it all", I.CRISIS),
    ("stop texting me, I'm so anxious", I.CLINICAL_CONCERN),
    ("I'm too anxious to come, please cancel", I.CLINICAL_CONCERN),
    ("Please stop texting me, I'll call to cancel", I.OPT_OUT),
    ("can't make it thursday, can we do friday?", I.RESCHEDULE),
    ("yes I'll be there, what's the address?", I.CONFIRM),
    ("No me manden más mensajes, me voy a matar", I.CRISIS),
]


@pytest.mark.parametrize(("text", "intent"), PRIORITY_CASES)
def test_safety_wins_when_a_message_carries_several_intents(text: str, intent: Intent) -> None:
    got = understand(text)
    assert got.intent is intent
    assert got.evidence[0].intent is intent  # strongest evidence first


def test_priority_order() -> None:
    assert PRIORITY[:3] == (I.CRISIS, I.CLINICAL_CONCERN, I.OPT_OUT)
    assert set(PRIORITY) == set(Intent)
    assert strongest([I.CONFIRM, I.OPT_OUT, I.QUESTION]) is I.OPT_OUT
    assert strongest([]) is I.OTHER


# --- negation, shorthand, typos, caps, emoji, greetings ------------------------------------------

REPLIES = [
    ("I'm NOT cancelling", I.CONFIRM),
    ("Not cancelling, just checking in. See you Monday", I.CONFIRM),
    ("Don't cancel it, I'll be there", I.CONFIRM),
    ("I don't need to reschedule anymore, I'll come at the usual time", I.CONFIRM),
    ("I was going to cancel but I'll come after all", I.CONFIRM),
    ("No voy a cancelar, ahí estaré", I.CONFIRM),
    ("k c u then", I.CONFIRM),
    ("YES I WILL BE THERE", I.CONFIRM),
    ("Confirmd, see you tomorow", I.CONFIRM),
    ("👍 see you then", I.CONFIRM),
    ("Hi! Yes, I'll be there. Have a good day", I.CONFIRM),
    ("Yes thank you, see you soon. Best, Maria", I.CONFIRM),
    ("cnt come 2day sry", I.CANCEL),
    ("I CANT MAKE IT", I.CANCEL),
    ("pls cancell my appt", I.CANCEL),
    ("can't come today 😢", I.CANCEL),
    ("No sorry", I.CANCEL),
    ("can we reschedual", I.RESCHEDULE),
    ("Can I come at 5 instead of 3?", I.RESCHEDULE),
    ("Could we move it to Friday?", I.RESCHEDULE),
    ("What is your cancellation policy?", I.QUESTION),
    ("How much notice do you need to reschedule?", I.QUESTION),
    ("Where should I park?", I.QUESTION),
    ("Please start texting me again", I.OPT_IN),
    ("I don't want to get these texts anymore", I.OPT_OUT),
    ("You have the wrong number", I.OPT_OUT),
    ("Running 5 minutes late", I.OTHER),
    ("Thank you!", I.OTHER),
    ("Hello", I.OTHER),
    ("How does this work?", I.HELP),
    ("What do I reply to confirm?", I.HELP),
    ("I'm outside", I.OTHER),
    # Spanish
    ("Sí, ahí estaré mañana", I.CONFIRM),
    ("No puedo ir a la cita", I.CANCEL),
    ("¿Podemos cambiar la cita al viernes?", I.RESCHEDULE),
    ("¿Cuál es la dirección del consultorio?", I.QUESTION),
    ("No me manden más mensajes", I.OPT_OUT),
    ("Quiero volver a recibir los recordatorios", I.OPT_IN),
    ("Quiero hablar con una persona", I.HELP),
    ("Llego 5 minutos tarde", I.OTHER),
    # Asking what a reply keyword means answers nothing (it would have confirmed the visit).
    ('What does "reply C to confirm" mean, confirm what exactly?', I.HELP),
    ("how do I reply to this to confirm? nothing happened", I.HELP),
    ("Can you confirm what time my appointment is?", I.QUESTION),
    ("Who sees these messages?", I.HELP),
    # A cancellation that rules out a new date, or takes one visit off the schedule.
    ("Cancel please. No new date needed.", I.CANCEL),
    ("I need to cancel 12/11. Will not rebook at this time.", I.CANCEL),
    ("Por favor cancelen la sesión del viernes. No queremos otra fecha por ahora.", I.CANCEL),
    ("I won't make it Monday, please take me off the schedule for that one", I.CANCEL),
    ("please take me off your texting list", I.OPT_OUT),
    ("Por favor, dadme de baja de los mensajes", I.OPT_OUT),
    ("Quiten este número de la lista, es de mi suegra", I.OPT_OUT),
    ("sign me up for appointment texts", I.OPT_IN),
    ("unsub pls, these buzz during my shift", I.OPT_OUT),
    ("please don't send me any more reminders", I.OPT_OUT),
    ("yes please text me the reminders", I.OPT_IN),
    ("new number, please send the reminders to this one", I.OPT_IN),
    ("i turned the texts off last year but i want them back", I.OPT_IN),
    ("quiero que me manden los recordatorios", I.OPT_IN),
    ("I saw the reminder. Yes that is fine.", I.CONFIRM),
    ("ok sounds good", I.CONFIRM),
    # An acknowledgement word deep in a message confirms nothing.
    ("hope you all have a good break", I.OTHER),
    ("cars in the shop, can we move today to tmrw?", I.RESCHEDULE),
    ("could my son's appointment be switched to after school?", I.RESCHEDULE),
    ("any evening slots? i start a new job monday", I.RESCHEDULE),
    ("puedo ir el viernes en vez del miércoles?", I.RESCHEDULE),
    ("the sertraline is making me shaky all day, is this normal?", I.CLINICAL_CONCERN),
    ("mi mamá está muy decaída desde que murió mi papá, ¿la podría ver?", I.CLINICAL_CONCERN),
    ("Cancelo la cita de esta tarde, me quedé sin niñera.", I.CANCEL),
    # Texted us by mistake: not a request to stop our texts.
    ("sorry wrong number, meant to text my sister", I.OTHER),
    ("you have the wrong number", I.OPT_OUT),
    ("please stop the reminder texts", I.OPT_OUT),
    ("no me enviéis más mensajes a este número", I.OPT_OUT),
    ("quiero dejar de recibir los recordatorios", I.OPT_OUT),
    ("can i get text reminders?", I.OPT_IN),
    ("text me instead of calling, I can't pick up at work", I.OPT_IN),
    ("how do these texts work?", I.HELP),
    ("¿esto es una máquina o una persona?", I.HELP),
    ("gotta move mine, jury duty. anything the week after?", I.RESCHEDULE),
    ("cant do today but how about thursday", I.RESCHEDULE),
    ("I won't be at the appointment on the 14th, sorry", I.CANCEL),
    ("basta de recordatorios, gracias", I.OPT_OUT),
    ("Why am I getting these messages? I don't recognize the number.", I.HELP),
    ("Any chance of changing Tues to Thurs?", I.RESCHEDULE),
    ("Please cancel, I'll call to rebook later", I.CANCEL),
    ("I'd like email and text reminders for all my appointments", I.OPT_IN),
    # A stranger who got our text: stop texting that number, however politely it is said.
    ("sorry, wrong number I think? I don't know any Dr. Alvarez", I.OPT_OUT),
    # A place or a ride is not an opt-out: "stop" closing "the bus stop", "drop me off".
    ("see you tues, i'll come straight from the bus stop", I.CONFIRM),
    ("can my daughter drop me off at the door? i use a cane", I.QUESTION),
    ("have to cancel, please take me off friday morning", I.CANCEL),
    ("my father passed, please remove his number from the text list", I.OPT_OUT),
    ("please add me to the text reminders", I.OPT_IN),
    ("i'd rather get texts instead of phone calls", I.OPT_IN),
    ("cancel thursday please, no need to find another time", I.CANCEL),
    # A parent who will not wake a sleeping baby is not a baby that will not wake.
    ("cancelling today, the baby just fell asleep and i'm not waking him", I.CANCEL),
    # A greeting alone, or "there in 5", asks nothing (the model had read "buenas tardes" as a
    # time to move to).
    ("hola, buenas tardes", I.OTHER),
    ("hi, good morning", I.OTHER),
    ("llego en 5", I.OTHER),
    # blind164-171 (session 10): the opt-out line missed "do not send more messages"; opt-ins in
    # other words; "almost cancelled", a hotel, a health plan or a letter are no confirmation.
    ("please don't send any more texts to this number", I.OPT_OUT),
    (
        "turned the texts off by accident and stopped the reminders by accident, want them back",
        I.OPT_IN,
    ),
    ("i nearly cancelled but i'm coming, see you monday", I.CONFIRM),
    ("i would like to modify my appointment to a friday", I.RESCHEDULE),
    ("what is the video link? i'll be in a hotel that night", I.QUESTION),
    ("do you take aetna? i'm still on my wife's plan", I.QUESTION),
    ("could you write a letter confirming i have been attending?", I.QUESTION),
    ("please send the reminder texts to me too, i'm his dad", I.OPT_IN),
    ("can my son get the reminders too?", I.OPT_IN),
    ("¿me pueden mandar los recordatorios a este número?", I.OPT_IN),
    ("please add me to the appointment reminders", I.OPT_IN),
    # blind172-179 (session 10): a partial "not cancelling", "a diff day", enrolling a number,
    # forms "still on file", "concealed" (was corrected to "cancelled"), "reply Y to confirm".
    ("not cancelling the whole month, just friday's", I.CANCEL),
    ("i'm not cancelling, just need a diff day", I.RESCHEDULE),
    ("please enroll my number in the appointment reminders", I.OPT_IN),
    ("are my forms still on file?", I.QUESTION),
    ("can you sign my concealed carry form?", I.QUESTION),
    ("what does reply C to confirm mean?", I.HELP),
    ("got a text saying reply Y to confirm, who is this?", I.HELP),
    # blind180-187 (session 10): "so she can quit reminding me" is no opt-out; "dont send me
    # these anymore" is one; relatives' numbers for the reminders; a letter "confirming I'm in
    # treatment"; "what else you have"; "no es que quiera cancelar".
    ("sign me up for text reminders so my wife can quit reminding me", I.OPT_IN),
    ("don't send me these anymore", I.OPT_OUT),
    ("can my dad's number also get the reminder texts?", I.OPT_IN),
    ("put my sister on the texts too", I.OPT_IN),
    ("can i get a letter confirming i'm in treatment?", I.QUESTION),
    ("something came up monday, what else you got?", I.RESCHEDULE),
    ("no es que quiera cancelar, necesito una hora más tarde", I.RESCHEDULE),
    # blind196-203 (session 10): second-language opt-outs and opt-ins, "cant stop…" is no STOP,
    # "put me back on thursday" is no opt-in, "while I'm away" is no cancellation.
    ("stop to send me message please", I.OPT_OUT),
    ("been refreshing his page all night, cant stop...", I.OTHER),
    ("put me again for the texts please", I.OPT_IN),
    ("can you add also my wife phone for the reminders?", I.OPT_IN),
    ("START. and don't drop me this time", I.OPT_IN),
    ("¿me pueden agregar a los recordatorios?", I.OPT_IN),
    ("add my husband's number to the texts, he tracks my appts while i'm away", I.OPT_IN),
    ("i'm not cancelling, i only want to move from 9 to 3", I.RESCHEDULE),
    ("what do i text to confirm vs cancel?", I.HELP),
    ("why was i charged for a session i cancelled two days ahead?", I.QUESTION),
    # blind204-211 (session 10): "I don't need these reminders anymore" was a crisis; "take me
    # off for that day" cancels; relatives signed up; "opt me back in for SMS reminders".
    ("i don't need these reminders anymore, it's on my calendar", I.OPT_OUT),
    ("not coming, just take me off for that day", I.CANCEL),
    ("please take me off for next tuesday", I.CANCEL),
    ("please sign my wife up for the texts too", I.OPT_IN),
    ("pls opt me back in for sms reminders", I.OPT_IN),
    ("agrégueme a los mensajes, número nuevo", I.OPT_IN),
    ("send the reminders to my cell instead of the house phone", I.OPT_IN),
    (
        "sign me up for reminders, my wife says she'll kill me if i forget another appointment",
        I.OPT_IN,
    ),
    ("what's the fee if i cancel late? not cancelling, just asking", I.QUESTION),
    ("my son is wetting the bed again and won't go to school", I.CLINICAL_CONCERN),
    # A gig and a prescription that saves a second trip are not crises.
    ("mañana no creo que llegue, me salió una chamba. ¿cuánto cobran si cancelo?", I.QUESTION),
    (
        "can the doctor write the prescription so i don't have to go to two different places?",
        I.CLINICAL_CONCERN,
    ),
    # A reply that only hedges is read by a person, not paged as a crisis (the screen read
    # "idk" as one) and not taken as a confirmation ("not sure" held "sure").
    ("idk", I.OTHER),
    ("not sure yet", I.OTHER),
    ("i dont know", I.OTHER),
    ("no sé", I.OTHER),
    ("idk yet, will let u know", I.OTHER),
    ("please turn the reminder texts back on", I.OPT_IN),
    ("pls send text reminders again, i cant hear the phone calls", I.OPT_IN),
    ("new number. put the texts on this one", I.OPT_IN),
    ("vuelva a mandarme los avisos de las citas por favor", I.OPT_IN),
    ("am I writing to a human being or an automated system?", I.HELP),
    ("how did you get this number?", I.HELP),
]


@pytest.mark.parametrize(("text", "intent"), REPLIES)
def test_replies(text: str, intent: Intent) -> None:
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "hint", "language"),
    [
        ("I can't come tomorrow", None, "en"),
        ("No puedo ir mañana", None, "es"),
        ("¿Dónde está la oficina?", None, "es"),
        ("ok", "es-MX", "es"),
        ("ok", None, "en"),
        ("SÍ", None, "es"),
        ("C", "es", "es"),
    ],
)
def test_language(text: str, hint: str | None, language: str) -> None:
    assert understand(text, language_hint=hint).language == language


def test_detect_language_ties_go_to_the_hint() -> None:
    assert detect_language("12", "12", "es") == "es"
    assert detect_language("12", "12", None) == "en"


@pytest.mark.parametrize(
    ("text", "person", "bot"),
    [
        ("can I talk to a real person", True, False),
        ("Can someone call me?", True, False),
        ("Quiero hablar con una persona", True, False),
        ("is this a bot?", False, True),
        ("¿Eres un robot?", False, True),
        ("Am I talking to a real person?", True, True),
        ("yes I'll be there", False, False),
    ],
)
def test_person_and_bot_flags(text: str, person: bool, bot: bool) -> None:
    got = understand(text)
    assert (got.asks_for_person, got.asks_if_bot) == (person, bot)


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Cant make it 2mrw 😢", "can not make it tomorrow emo_sad"),
        ("ill b there", "i will be there"),
        ("I'm ill", "i am ill"),
        ("c u then", "see you then"),
        ("I have cancer", "i have cancer"),  # a real word is never "corrected"
        ("need to cancle", "need to cancel"),
        ("i need to reshedule", "i need to reschedule"),
        ("tomorrows session", "tomorrows session"),
        ("¿Dónde?", "? donde ?"),
        ("he'll kill me", "he will kill me"),
        ("self-harm, again - sorry", "self harm . again . sorry"),  # a hyphen inside a word joins
        ("salió de la cárcel", "salio de la carcel"),  # jail, not "cancel"
        ("decreased appetite, homeless shelter", "decreased appetite . homeless shelter"),
        ("el mensaje de cancelación", "el mensaje de cancelacion"),
    ],
)
def test_normalize(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


# --- results, purity, long messages, lexicons, the model -----------------------------------------


def test_understanding_is_complete_and_pure() -> None:
    first = understand("Can we do Friday instead?")
    assert isinstance(first, Understanding)
    assert first == understand("Can we do Friday instead?")
    assert 0.0 < first.confidence <= 1.0
    assert first.evidence and first.evidence[0].rule.startswith("reschedule:")
    assert first.language == "en"


def test_a_message_no_rule_decides_gets_the_model_or_other() -> None:
    got = understand("hmm")
    assert got.intent in set(Intent) - {I.OPT_OUT, I.OPT_IN}
    assert understand("").intent is I.OTHER


@pytest.mark.parametrize(
    "text",
    ["Me muero de ganas de verla", "leave it", "numbers", "hi it's me", "ugh", "Feliz año nuevo"],
)
def test_the_model_never_changes_consent_nor_raises_a_crisis(text: str) -> None:
    got = understand(text)
    if got.evidence[0].rule.startswith("model"):
        assert got.intent not in {I.OPT_OUT, I.OPT_IN, I.CRISIS}


def test_a_long_story_is_not_read_as_a_reply() -> None:
    story = " ".join(["my week was long and my sister said leave me alone"] * 6)
    assert len(story.split()) > LONG_WORDS
    got = understand(story)
    assert got.intent is I.CLINICAL_CONCERN  # a long message with no rule goes to staff
    assert understand(story + " What should I do?").intent is I.QUESTION
    assert understand("leave me alone").intent is I.OPT_OUT


def test_a_long_email_the_model_is_sure_of_is_read_as_that_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from frontdesk.agent import understand as module

    email = (
        "Hello Ruth, I hope you are well. I started a new job this week and it is going well so "
        "far, but my hours are now eight thirty to five and I cannot leave early on Thursdays "
        "anymore. Would it be possible to move my Thursday sessions to a later slot, or to a "
        "Saturday morning if you have one. Thanks so much for your help with this, Dana"
    )
    assert len(email.split()) > LONG_WORDS
    got = understand(email)
    assert got.intent is I.RESCHEDULE
    assert got.evidence[0].rule == "long message; model:naive_bayes"
    # Below the floor the letter goes to a person, as before.
    monkeypatch.setattr(module, "_LONG_MODEL_FLOOR", 1.01)
    assert understand(email).intent is I.CLINICAL_CONCERN


def test_every_lexicon_loads() -> None:
    folder = Path(lexicons.__file__).parent
    names = sorted(p.stem for p in folder.glob("*.txt"))
    assert "crisis_en" in names and "crisis_es" in names
    for name in names:
        assert lexicons.load(name).entries, name
    assert any(e.soft for e in lexicons.load("crisis_en").entries)
    assert any(e.short_only for e in lexicons.load("opt_out").entries)


def test_training_examples_read_and_bad_lines_are_refused() -> None:
    examples = read_examples("confirm\tyes\n# note\n\ncancel\tno way\n")
    assert examples == [(I.CONFIRM, "yes"), (I.CANCEL, "no way")]
    with pytest.raises(ValueError, match="line 1"):
        read_examples("confirm yes")
    model = NaiveBayes([*examples, (I.RESCHEDULE, "another day")])
    assert model.predict(normalize("another day please")).intent is I.RESCHEDULE
    assert model.predict("").confidence == 0.0


# --- the harness's scoring code, on a slice ------------------------------------------------------


def _harness() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "eval" / "eval_intents.py"
    spec = importlib.util.spec_from_file_location("eval_intents", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_intents"] = module
    spec.loader.exec_module(module)
    return module


def test_harness_scores_a_slice() -> None:
    harness = _harness()
    cases = harness.read_cases()
    assert len(cases) >= 500
    blind = [c for path in harness.BLIND_SETS for c in harness.read_cases(path)]
    assert harness.overlap_with_training(cases + blind) == []
    sample = cases[::20]
    report = harness.score(sample, lambda text: understand(text).intent)
    assert report.total == len(sample)
    assert report.correct + len(report.errors) == report.total
    assert set(report.per_intent) == set(Intent)
    assert 0.0 <= report.macro_f1 <= 1.0
    table = harness.markdown_table(report)
    assert "| crisis |" in table and "macro-F1" in table


def test_harness_scoring_arithmetic() -> None:
    harness = _harness()
    cases = [
        harness.Case(I.CRISIS, frozenset(), "a"),
        harness.Case(I.CRISIS, frozenset(), "b"),
        harness.Case(I.OTHER, frozenset({"benign"}), "c"),
        harness.Case(I.OTHER, frozenset({"benign"}), "d"),
    ]
    answers = {"a": I.CRISIS, "b": I.OTHER, "c": I.CRISIS, "d": I.OTHER}
    report = harness.score(cases, answers.__getitem__)
    assert report.crisis_recall == 0.5
    assert report.false_crisis_benign == 0.5
    precision, recall, _, support = report.per_intent[I.CRISIS]
    assert (precision, recall, support) == (0.5, 0.5, 2)


@pytest.mark.parametrize(
    "text",
    [
        "idk if i can make it",
        "not sure if I can come thursday",
        "no sé si pueda ir el martes",
        "not sure I can make it, car's in the shop",
    ],
)
def test_unsure_attendance_is_never_a_confirmation(text: str) -> None:
    assert understand(text).intent is not I.CONFIRM


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("C!! cant wait, been a long week", I.CONFIRM),
        ("R. anything open thursday evening?", I.RESCHEDULE),
        ("r - got anything after 6?", I.RESCHEDULE),
        ("R porfa, ¿hay algo el lunes temprano?", I.RESCHEDULE),
        ("N - car's in the shop, sorry", I.CANCEL),
        ("Reply: C. thanks!", I.CONFIRM),
        ("C ---- Original message ---- Reply C to confirm, R to reschedule", I.CONFIRM),
        (
            '"Reply C to confirm, R to reschedule, or N if you can\'t come" R. mornings now',
            I.RESCHEDULE,
        ),
        (
            "> Reminder: Reply C to confirm, R to reschedule, or N if you can't come. -- N, sick",
            I.CANCEL,
        ),
    ],
)
def test_a_leading_reply_letter_answers_the_reminder(text: str, intent: Intent) -> None:
    """normalize() reads "R" as "are" and "N" as "and": the letter is read on the raw text."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "not_intent"),
    [
        ("r u open on saturdays?", I.RESCHEDULE),
        ("n u? hope ur week was ok", I.CANCEL),
        ("R.I.P. to my old phone lol, this is my new one", I.RESCHEDULE),
    ],
)
def test_shorthand_is_not_a_reply_letter(text: str, not_intent: Intent) -> None:
    assert understand(text).intent is not not_intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("can you send the reminders to my work email instead? j.doe@example.com", I.OPT_IN),
        ("can i get the reminders on whatsapp instead of sms", I.OPT_IN),
        ("manden los recordatorios por whatsapp a mi esposa por favor", I.OPT_IN),
        ("please text this number instead of my home phone", I.OPT_IN),
        ("I'd prefer email reminders going forward", I.OPT_IN),
        ("stop txt me pls", I.OPT_OUT),
        ("no reminders anymore please", I.OPT_OUT),
        ("what does C mean? do i text it back", I.HELP),
        ("which letter means what?", I.HELP),
        ("is this a scam or real?", I.HELP),
        ("what clinic is this? never booked anything", I.HELP),
        ("¿se puede para la otra semana? tengo turno", I.RESCHEDULE),
        ("el profe me va a matar si vuelvo a faltar, cancelo el jueves porfa", I.CANCEL),
        ("R please, my neurologist is gonna kill me if I miss his follow up", I.RESCHEDULE),
    ],
)
def test_channel_requests_letters_and_look_alikes_read_right(text: str, intent: Intent) -> None:
    """Session 11's replies: a new channel or address "instead" is an opt-in, not a new time;
    what a letter means is help; an idiom about a teacher or a doctor is no crisis."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    "text",
    [
        "my mind no stop. how do i sleep before the session?",
        "I'll send the forms to your email tonight",
        "i get no reminders anymore since i switched phones, can you check?",
    ],
)
def test_no_consent_change_from_words_that_only_look_like_one(text: str) -> None:
    assert understand(text).intent not in {I.OPT_OUT, I.OPT_IN}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("please remove my mother from your messages, she passed last week", I.OPT_OUT),
        ("stop blowing up my phone", I.OPT_OUT),
        ("quiero volver a recibir los avisos, los había desactivado", I.OPT_IN),
        ("switch my reminders to email please", I.OPT_IN),
        ("email me the reminders too", I.OPT_IN),
        ("send the reminders to 555 201 3344 from now on", I.OPT_IN),
        ("new phone, use this number from now on", I.OPT_IN),
        ("what does N do? does it cancel or what", I.HELP),
        ("¿la R es para cambiar la cita?", I.HELP),
        ("if I text C does it confirm or cancel?", I.HELP),
        ("ima pass on this week, work is nuts", I.CANCEL),
        ("no can do tuesday, work", I.CANCEL),
        ("any chance of the afternoon?", I.RESCHEDULE),
        ("same time next week?", I.RESCHEDULE),
        ("anything open after 5?", I.RESCHEDULE),
        ("¿habría otro horario el viernes?", I.RESCHEDULE),
        ("N >> Reminder: your appointment is Thu at 3:00 PM", I.CANCEL),
        ('"Reply C to confirm, R to reschedule" >> R', I.RESCHEDULE),
        ("> Reminder: your appt is Wed at 1:30 PM. N - surgery that morning", I.CANCEL),
        ("what does R do? does it cancel or let me choose another time", I.HELP),
        ("what's the charge for a same day cancellation?", I.QUESTION),
        ("how late can i be before it counts as a no show?", I.QUESTION),
        ("new phone, please send reminders here instead of the old one", I.OPT_IN),
        ("send Liam's reminders to me too, he never checks his phone", I.OPT_IN),
        ("real quick, do you take aetna?", I.QUESTION),
    ],
)
def test_session_11_round_two_replies(text: str, intent: Intent) -> None:
    """A question about what a letter does never acts on it; a relative's death or a lost phone
    changes where the reminders go; an available time asked as a question is a reschedule."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        (
            "Reminder: your appt is Mon 3/2 at 9:00 AM. Reply C to confirm, R to reschedule, N to "
            "cancel. -- C",
            I.CONFIRM,
        ),
        ('"Reply C to confirm, R to reschedule, N to cancel" C', I.CONFIRM),
        ('"Reply C to confirm, R to reschedule, N to cancel" > N', I.CANCEL),
        ("I'm confirming. Do NOT cancel me, a no-show gets reported to my program", I.CONFIRM),
        ("can I wear noise-cancelling headphones in the waiting room?", I.QUESTION),
        ("just cancel. not moving it, I'll call when I'm ready", I.CANCEL),
        ("NO not reschedule, cancel. wrong letter", I.CANCEL),
        ("gotta cancel thursday, can't take another day off", I.CANCEL),
        ("cancelo, no me dan otro día libre en el trabajo", I.CANCEL),
        ("What does R stand for? Reschedule or Reply?", I.HELP),
        ("do i send the letter C or the word confirm?", I.HELP),
        (
            "I'm not cancelling, I need a new time. Please don't remove me from the schedule",
            I.RESCHEDULE,
        ),
        ("is there parking or do I take the bus? where's the closest stop", I.QUESTION),
        ("sorry babe cant talk, at work. love you", I.OTHER),
        ("perdón, no era para ustedes ese mensaje", I.OTHER),
    ],
)
def test_session_12_replies(text: str, intent: Intent) -> None:
    """The reminder quoted back with its "N to cancel" is not a cancellation; a letter's meaning
    asked is help; "do not cancel", "noise-cancelling", "another day off" and "remove me from
    the schedule" act on nothing; a text meant for someone else cancels nothing."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ('"Reply C to confirm, R to reschedule, N to cancel" N we dont need it anymore', I.CANCEL),
        ("Reply R? ok R. Friday won't work, the clinic window is 9 to 11", I.RESCHEDULE),
        ("ok N. we moved for his job", I.CANCEL),
        ("HELP??", I.HELP),
        ("Cancel and I'll rebook when the van is fixed", I.CANCEL),
        ("just cancel it, I'll sort a new one another time", I.CANCEL),
        ("cancélela nomás, no ocupo otra fecha por ahora", I.CANCEL),
        ("cancele la hora porfa, el Hernán tiene fiebre y no lo puedo dejar solo", I.CANCEL),
        ("Can you call my landline with the reminders instead? I can't read texts", I.OPT_IN),
        ("what do the letters mean again? R is reschedule?", I.HELP),
        ("i replied Y and it said invalid?? how do i say yes", I.HELP),
        ("no more reminders pls, my phone dinging with orders all day is killing me", I.OPT_OUT),
    ],
)
def test_session_12_round_two_replies(text: str, intent: Intent) -> None:
    """A letter settled on ("ok R.") or given after the quoted reminder answers it; a promise to
    rebook later does not ask for a new time; a channel by phone is an opt-in; "HELP??" is
    HELP."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("am I texting the office or an automated system?", I.HELP),
        ("do I reply here or in the portal? the app confused me", I.HELP),
        ("do I have to answer every reminder or only the last one?", I.HELP),
        ("what do I press to say yes?", I.HELP),
        ("i keep replying C and nothing happens, is anyone actually reading these?", I.HELP),
        ("this bot is so slow lol. can I get a person?", I.HELP),
        ("¿me puede comunicar con una persona?", I.HELP),
        ("how does this texting thing work, is it just for confirming?", I.HELP),
        ("¿cuál es la política de cancelación? ¿me cobran?", I.QUESTION),
        ("can you also text my dad the reminders? he drives me", I.OPT_IN),
        ("she'd like the reminders emailed as well as texted", I.OPT_IN),
        ("agregame al WhatsApp pa los recordatorios porfa", I.OPT_IN),
        ("anótenme para los recordatorios por mensaje", I.OPT_IN),
        ("mi hijo no podrá ir el jueves, gracias", I.CANCEL),
        ("we'll pass on this week's session, the team made state", I.CANCEL),
        ("She cannot make Friday, her son is visiting", I.CANCEL),
        ("I shall not attend Monday. Regards", I.CANCEL),
        ("could my appt go to after 5? new pickup schedule", I.RESCHEDULE),
        ("¿se puede pasar lo del martes al jueves?", I.RESCHEDULE),
        ("¿me pasás la sesión a la semana que viene?", I.RESCHEDULE),
        ("¿me da una cita el 22 en lugar de la del 15?", I.RESCHEDULE),
        ("might I come an hour later on Monday? the van is late", I.RESCHEDULE),
        ("the letter says the 9th but i can only do the 10th", I.RESCHEDULE),
        ("do you have evening hours? I can only come after 6", I.QUESTION),
        ("urges are bad this week, need some strategies asap", I.CLINICAL_CONCERN),
        ("keep seeing the accident when i close my eyes", I.CLINICAL_CONCERN),
    ],
)
def test_session_14_replies(text: str, intent: Intent) -> None:
    """Round one of session 14: how replying works and a person asked for are help; a policy
    question in Spanish is not a cancellation ("cancelación" was corrected to English); a
    relative or a second channel added opts in ("para los recordatorios" is no "stop"); "no
    podrá ir", "pass on", "cannot make Friday" cancel; "go to after 5", "pasar lo del martes",
    "en lugar de la del 15", "an hour later" reschedule; strategies and intrusive images are
    clinical."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Confirmed. Took my trazodone exactly like the doctor said, see you Monday", I.CONFIRM),
        ("I'll be there, still taking the lithium just like prescribed", I.CONFIRM),
        ("Sí voy, ya me tomo la pastilla cada noche como me dijo la doctora", I.CONFIRM),
        ("confirmed, taking the new med as prescribed but my anxiety is worse", I.CLINICAL_CONCERN),
        ("¿me pueden dar la cita más tarde? la señal no sirve en la mañana", I.RESCHEDULE),
        ("anything on a saturday? i cant miss more work", I.RESCHEDULE),
        ("friday works better than monday. can we swap?", I.RESCHEDULE),
        ("can we push next week to the week after?", I.RESCHEDULE),
        ("¿habrá un espacio el miércoles?", I.RESCHEDULE),
        ("el intérprete no puede venir, mejor cancelamos esa cita", I.CANCEL),
        ("cx. flu.", I.CANCEL),
        ("ya tengo teléfono propio, pueden volver a mandármelos", I.OPT_IN),
        ("please add me (his mom) to the reminders for his appts", I.OPT_IN),
        ("resume whatsapp reminders pls, new phone", I.OPT_IN),
        ("no quiero recibir más whatsapps de ustedes, gracias", I.OPT_OUT),
        ("how does this work, do I reply here to change my appt or use the portal?", I.HELP),
        ("I keep getting these but I don't know how to answer them. help??", I.HELP),
        ("se puede contestar en español o tiene que ser en inglés?", I.HELP),
    ],
)
def test_session_14_round_two_replies(text: str, intent: Intent) -> None:
    """Medicine taken as prescribed, said in passing, is no clinical matter (symptoms alongside
    still are); a later time, a weekday asked for, a swap, "push next week" reschedule;
    "cancelamos", "cx" cancel; a second channel or a relative opts in; asking how replying
    works is help."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("confirmed. I'm on the new meds exactly like dr said, no side effects", I.CONFIRM),
        ("Yes, confirming Thursday for the family grief session", I.CONFIRM),
        ("Do you offer grief groups for parents? How much do they cost?", I.QUESTION),
        ("dice responda 1 o 2, ¿cuál es para decir que sí?", I.HELP),
        ("idk what reply R means?", I.HELP),
        ("does this number go to my therapist or just the front desk?", I.HELP),
        ("please send reminders also to my WhatsApp when I go home", I.OPT_IN),
        ("saquen este número de los recordatorios, ya no lo usa", I.OPT_OUT),
        ("the reminder says 10:00. can it be 10:30?", I.RESCHEDULE),
        ("only day off is friday, can you fit me in friday?", I.RESCHEDULE),
        ("no podré ir el jueves, ya pediré otra cita más adelante", I.CANCEL),
    ],
)
def test_session_14_round_three_replies(text: str, intent: Intent) -> None:
    """Medicine taken "like the doctor said" in other words; a grief group or session is a
    service, not a symptom; which reply means yes is help; "ya pediré otra cita" cancels."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("outreach here, can you also send Sam's reminders to our office line?", I.OPT_IN),
        ("volvedme a mandar los recordatorios, que los quité sin querer", I.OPT_IN),
        ("apuntadme a los avisos por SMS porfa", I.OPT_IN),
        ("pls stop the whatsapp reminders, email only from now on", I.OPT_OUT),
        ("hola?? me contesta alguien o es todo automático", I.HELP),
        ("who do I reply to and do I need to type something special?", I.HELP),
        ("can I reply here about anything or only confirm/cancel?", I.HELP),
        ("how do I pick a new time through here?", I.HELP),
        ("can I push to after the holidays? early Feb works", I.RESCHEDULE),
        ("¿me la podéis pasar a la semana que viene?", I.RESCHEDULE),
        ("el lunes no puedo. ¿tenéis algo el viernes por la mañana?", I.RESCHEDULE),
        ("the nurse schedule changed again, can we do thursdays from now on?", I.RESCHEDULE),
    ],
)
def test_session_14_round_four_replies(text: str, intent: Intent) -> None:
    """A second number or channel opts in, in peninsular Spanish too; one channel stopped opts
    out; asking whether anyone reads or what to type is help; "push to after", "¿me la podéis
    pasar?", "¿tenéis algo el viernes?" reschedule."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    "text",
    [
        "since he came home from deployment I feel nothing, like watching a movie of my own "
        "life. everyone expects me to be happy. is this a thing? can we talk about it",
        "home aide for Mr. B here. he has been much more down this week, not wanting to get "
        "dressed, not touching his crossword. can the therapist call him before his appt?",
    ],
)
def test_symptoms_asked_about_as_a_question_go_to_staff(text: str) -> None:
    """A question that describes symptoms, short or long, is a concern for staff when the
    model reads it as clinical even if unsure (``_QUESTION_ALONGSIDE_FLOOR``)."""
    assert understand(text).intent is I.CLINICAL_CONCERN


def test_stop_with_a_question_mark_is_no_keyword() -> None:
    got = understand("stop?")
    assert not got.is_keyword and got.intent is not I.OPT_OUT


def test_a_clinical_matter_inside_a_question_goes_to_staff() -> None:
    got = understand(
        "Buenas, mi mamá está durmiendo todo el día con la quetiapina nueva, no quiere ni "
        "comer. ¿La doctora puede llamarnos?"
    )
    assert got.intent is I.CLINICAL_CONCERN
    assert got.evidence[0].rule.startswith("alongside a reply; model:naive_bayes")


def test_an_ordinary_question_stays_a_question() -> None:
    assert (
        understand("is there parking at the Harbor Street office, or should I take the bus?").intent
        is I.QUESTION
    )


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        (
            "> Your appointment with Dr. Moss is on Wed 6/14 at 3:00 PM. Reply C to confirm, R to "
            "reschedule, N to cancel. -- Yes, confirmed, see you then. Sent from my iPhone",
            I.CONFIRM,
        ),
        ("N, cancelo la del viernes, tengo el trámite del cambio de nombre", I.CANCEL),
        ("no llego a las 5, ¿la pasamos a mañana?", I.RESCHEDULE),
        ("is this automated? how do I reply if I want a different time", I.HELP),
    ],
)
def test_session_12_round_three_replies(text: str, intent: Intent) -> None:
    """A long reply that quotes the whole reminder is read without its "N to cancel"; a name
    change moves nothing; asking how to reply for a new time is help."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("what do the letters mean again? C is cancel right?", I.HELP),
        ("N - job interview that day. ill call to book something later", I.CANCEL),
        ("CANCEL. BOARD MEETING. NO ALTERNATIVE TIME NEEDED.", I.CANCEL),
        ("Cancelen la del miércoles porfa. No la reagenden, yo les aviso.", I.CANCEL),
        ("Confirming. Shoot me if I try to cancel again, I need this one.", I.CONFIRM),
        ("cancel. NOT reschedule, just cancel.", I.CANCEL),
        ("confirmed, my dad thinks I'm cancelling but I'm not", I.CONFIRM),
        ("N. my mom cant go, if she misses another day at work she's in trouble", I.CANCEL),
        ("aceptan medicaid? cambié de trabajo y tengo seguro nuevo", I.QUESTION),
    ],
)
def test_session_12_round_four_replies(text: str, intent: Intent) -> None:
    """A letter's meaning asked is help; a cancellation that rules out a new time, or promises
    to call later, stays a cancellation; "cancel" said of someone else's fear is no cancel."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("running behind, be there in 10", I.OTHER),
        ("stuck on the bridge, be there soon", I.OTHER),
        ("does my daughter need me to be there for her first session?", I.QUESTION),
        ("yes, will be there", I.CONFIRM),
        ("cx tomorrow, kid is sick", I.CANCEL),
        ("what does N mean, cancel or no?", I.HELP),
        ("is R reply or reschedule", I.HELP),
        ("¿qué significa la R?", I.HELP),
        ("do I just type the letter?", I.HELP),
        ("¿pueden dejar de mandarme mensajes?", I.OPT_OUT),
        ("cancel monday please. don't put me in for another one yet", I.CANCEL),
        ("cancelen el lunes. no me la cambien a otra fecha", I.CANCEL),
        ("can't do tuesday. anything thursday afternoon?", I.RESCHEDULE),
        ("please rebook me for the week after, I'm away", I.RESCHEDULE),
        ("not cancelling! the word cancel in the text confused me. see you friday", I.CONFIRM),
        ("Say. I mean C", I.CONFIRM),
        ("no puedo ir el martes, me cambiaron el turno, cancélenla", I.CANCEL),
        ("¿aceptan Aetna? me cambiaron el seguro", I.QUESTION),
        ("running 5 late, parking is a nightmare", I.OTHER),
        ("could we push it a week? I feel awful asking again", I.RESCHEDULE),
    ],
)
def test_session_13_replies(text: str, intent: Intent) -> None:
    """A bare "be there in 10" is a running-late note; a letter's meaning asked is help; an
    opt-out asked as a question is an opt-out; a cancellation that rules out another time stays
    one; "me cambiaron el turno" (my shift was changed) asks for no new time; "the word cancel"
    is mentioned, not meant; a nightmare of a car park and feeling awful for asking are no
    clinical matter."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("can you text me instead of emailing?", I.OPT_IN),
        ("mándenme los recordatorios por WhatsApp en vez de correo", I.OPT_IN),
        ("please add my whatsapp for reminders", I.OPT_IN),
        ("I replied C and still got another reminder, did it go through?", I.HELP),
        ("what does replying N do, cancel or just tell you?", I.HELP),
        ("which letter is reschedule??", I.HELP),
        ("which number do I text back?", I.HELP),
        ("does it have to be a capital C?", I.HELP),
        ("can we slide Tuesday to Thursday?", I.RESCHEDULE),
        ("any chance of moving to the afternoon?", I.RESCHEDULE),
        ("¿podemos pasar la cita a las 5?", I.RESCHEDULE),
        ("anything early next week?", I.RESCHEDULE),
        ("gotta kill friday's appointment, sorry", I.CANCEL),
        ("have to bail on tomorrow, sorry", I.CANCEL),
        ("cancel tomorrow please, I'll call to rebook when I'm better", I.CANCEL),
        ("good morning!", I.OTHER),
        ("do I need new forms or is last year's paperwork still good?", I.QUESTION),
        ("can I do telehealth? does it work on a phone", I.QUESTION),
    ],
)
def test_session_13_round_one_replies(text: str, intent: Intent) -> None:
    """A channel asked for instead of another is an opt-in; a reply that seemed lost, what a
    letter does and which number to answer are help; other words for a new time reschedule;
    "kill my appointment", "bail on" cancel; "good morning" confirms nothing."""
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Texted C but it says not delivered?? did it go through", I.HELP),
        ("puse C y me llegó otro mensaje, ¿quedó?", I.HELP),
        ("¿qué significa la N? ¿si la pongo se cancela todo?", I.HELP),
        ("what do C R and N stand for?", I.HELP),
        ("can I text back in full sentences or only the letters?", I.HELP),
        ("¿estos mensajes me cuestan?", I.HELP),
        ("who exactly am I replying to?", I.HELP),
        ("¿me podéis mandar los recordatorios por WhatsApp en vez de por email?", I.OPT_IN),
        ("please send mom's reminders to my phone too", I.OPT_IN),
        ("bájenme de la lista de textos", I.OPT_OUT),
        ("these texts are too early, turn them off please", I.OPT_OUT),
        ("can you send the texts again, I turned them off by mistake", I.OPT_IN),
        ("can't do the 9th. 10th or 11th?", I.RESCHEDULE),
        ("is the 16th open?", I.RESCHEDULE),
        ("anything mon or tues am?", I.RESCHEDULE),
        ("could we switch her to wednesdays going forward?", I.RESCHEDULE),
        ("¿hay citas más temprano?", I.RESCHEDULE),
        ("baby's sick, we'll skip this one", I.CANCEL),
        ("please cancel, I'll call about another time later", I.CANCEL),
        ("what's the fee if we cancel the same day?", I.QUESTION),
        ("Need to move my 10am, mediation with my lawyer got moved to that time", I.RESCHEDULE),
    ],
)
def test_session_13_round_two_replies(text: str, intent: Intent) -> None:
    """A reply that seemed lost, what a letter does, sentences or letters and the texts' cost
    are help; someone else's reminders to my phone is an opt-in; "bájenme de la lista" and
    "turn them off" opt out ("by mistake" does not); dates offered reschedule; "skip this one"
    cancels; a fee asked about is a question; "mediation" is not a typo of "medication"."""
    assert understand(text).intent is intent


def test_apostrophe_contractions_are_read_before_apostrophes_go() -> None:
    assert normalize("we're good, he'll come, she\u2019ll call") == (
        "we are good . he will come . she will call"
    )
    # Without the apostrophe they are other words.
    assert normalize("we were well") == "we were well"
    # Read as "we will", "be in touch" still confirms nothing.
    assert understand("We'll be in touch when he's back").intent is not I.CONFIRM


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("can u add whatsapp too", I.OPT_IN),
        ("my email is dead, text me instead", I.OPT_IN),
        ("please add me to my son's reminders, I'm his guardian", I.OPT_IN),
        ("can you switch them back on?", I.OPT_IN),
        ("quítenla de los recordatorios, ya no viene", I.OPT_OUT),
        ("replied Y to the wrong one, how do I undo that?", I.HELP),
        ("can I write normally or just the letter?", I.HELP),
        ("¿qué pongo si sí voy?", I.HELP),
        ("is there a monday or tuesday?", I.RESCHEDULE),
        ("can the 6pm be moved earlier?", I.RESCHEDULE),
        ("cambiadme la del viernes, porfa", I.RESCHEDULE),
        ("can't do today, flat tire", I.CANCEL),
        ("I'm NOT cancelling, hit N by accident. C C C", I.CONFIRM),
        ("coach will bury me on the bench if I miss practice, anything after 6?", I.RESCHEDULE),
    ],
)
def test_session_13_round_three_replies(text: str, intent: Intent) -> None:
    """Another channel "too", "text me instead" and reminders switched back on are opt-ins;
    undoing a reply and replying "normally" are help; offered days and "be moved earlier"
    reschedule; a letter hit by accident and then corrected still confirms."""
    assert understand(text).intent is intent
