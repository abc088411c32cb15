"""What the answerer refuses to act on: requests for clinical advice, and text that tries to
instruct the agent (in a question or inside a document).

These are lexicons and patterns, deliberately broad: declining a question costs a hand-off to
the front desk; answering a clinical question from a policy document could hurt someone.
(`agent/safety.py` screens whole messages for crisis and clinical concern before they get here;
this module only guards the question-answering path.)
"""

from __future__ import annotations

import re

from frontdesk.agent.text import fold

_MEDS = (
    r"(?:med|meds|medication|medications|medicine|medicines|pills?|dose|doses|dosage|"
    r"antidepressants?|ssris?|snris?|benzos?|zoloft|prozac|lexapro|xanax|klonopin|ativan|"
    r"wellbutrin|lithium|adderall|ritalin|seroquel|abilify|effexor|cymbalta|trazodone|"
    r"sertraline|fluoxetine|escitalopram|lamictal|prescriptions?|medicamentos?|medicinas?|"
    r"pastillas?|dosis|antidepresivos?)"
)
_CONDITIONS = (
    r"(?:anxiety|anxious|panic|panic attacks?|depress\w*|trauma\w*|ptsd|ocd|adhd|bipolar|"
    r"grief|grieving|insomnia|nightmares?|flashbacks?|intrusive thoughts?|eating disorder|"
    r"binge\w*|purg\w*|self[- ]?harm\w*|cutting|suicid\w*|mood swings?|mania|manic|psychosis|"
    r"hallucinat\w*|voices|addiction|drinking|alcohol\w*|drugs?|relapse\w*|stress\w*|"
    r"anger|angry|lonely|loneliness|sad|sadness|worry|worries|worried|overthinking|burnout|"
    r"ansiedad|ansios[oa]|panico|ataques? de panico|depresion|deprimid[oa]|trauma|duelo|"
    r"insomnio|estres|tristeza|triste|soledad|adiccion|alcohol)"
)
_CLINICAL = [
    # Decisions about medication.
    rf"\b(?:stop|stopping|quit|quitting|start|starting|skip|skipping|increase|decrease|"
    rf"lower|raise|double|change|switch|taper|come off|get off|go off|mix|combine|cut)\b"
    rf"[\w\s']{{0,30}}\b{_MEDS}\b",
    r"\b(?:should|can|could|may) i\b[\w\s']{0,25}\b(?:take|taking|drink|drinking)\b",
    rf"\b(?:is it|it's|is it ok|is it safe)\b[\w\s']{{0,25}}\b(?:safe|ok|okay|bad|dangerous)\b"
    rf"[\w\s']{{0,30}}\b{_MEDS}\b",
    r"\bside effects?\b|\bwithdrawal\b|\boverdos\w*",
    rf"\b{_MEDS}\b[\w\s']{{0,30}}\b(?:work|working|help|helping|safe|enough|too much)\b",
    # How to cope with / treat / fix a condition or a feeling.
    r"\bhow (?:do|can|should|could|would) (?:i|we|someone|one|you)\b[\w\s']{0,30}"
    r"\b(?:cope|calm down|get over|get through|overcome|feel better|get better|relax|breathe)\b",
    r"\bhow to (?:cope|calm down|get over|overcome|feel better|relax)\b",
    rf"\b(?:how (?:do|can|should|could|would) (?:i|we|someone|one|you)|how to)\b[\w\s']{{0,30}}"
    rf"\b(?:deal|handle|manage|stop|control|treat|cure|fix|reduce|help|get rid|sleep|calm)\b"
    rf"[\w\s']{{0,40}}\b{_CONDITIONS}\b",
    rf"\b(?:tips|advice|strategies|techniques|exercises?|recommend\w*|suggest\w*)\b[\w\s']{{0,30}}"
    rf"\b{_CONDITIONS}\b",
    rf"\b(?:what|wat|wut) (?:should|can|do) i do\b[\w\s']{{0,40}}\b{_CONDITIONS}\b",
    rf"\b{_CONDITIONS}\b[\w\s']{{0,40}}\b(?:what should i do|what do i do|what can i do|"
    rf"any advice|any tips|help me|what helps)\b",
    rf"\b(?:help me|can you help)\b[\w\s']{{0,30}}\b(?:with|stop|calm|manage)\b[\w\s']{{0,20}}"
    rf"\b{_CONDITIONS}\b",
    # Diagnosis and "is this normal".
    r"\b(?:do|could|might|can) i have\b[\w\s']{0,20}\b(?:depression|adhd|bipolar|ptsd|ocd|"
    r"anxiety|autism|a disorder|borderline|bpd|schizophrenia|an eating disorder)\b",
    r"\bam i\b[\w\s']{0,15}\b(?:depressed|bipolar|crazy|normal|an addict|alcoholic|autistic|"
    r"psychotic|mentally ill)\b",
    r"\bdiagnos\w*\b",
    r"\bis (?:it|this|that) (?:normal|healthy|bad|a sign)\b",
    r"\bwhat(?:'s| is) wrong with me\b",
    r"\b(?:should i|do i need to) (?:leave|divorce|break up|forgive|confront|tell) "
    r"(?:my|him|her|them)\b",
    rf"\bshould i\b[\w\s']{{0,30}}\b(?:therapy|see a psychiatrist|go to the hospital|"
    rf"{_CONDITIONS})\b",
    # Spanish.
    rf"\b(?:dejar|deje|dejo|dejo de|suspender|cambiar|aumentar|bajar|reducir|tomar)\b"
    rf"[\w\s]{{0,25}}\b{_MEDS}\b",
    rf"\b(?:como|que) (?:puedo|debo|hago|hacer)\b[\w\s]{{0,30}}\b(?:manejar|controlar|superar|"
    rf"lidiar|calmar|quitar|dejar|tratar|sobrellevar|dormir|con)\b[\w\s]{{0,25}}\b{_CONDITIONS}\b",
    rf"\b(?:consejos?|tecnicas?|ejercicios?)\b[\w\s]{{0,30}}\b{_CONDITIONS}\b",
    r"\bes normal (?:sentir|que|tener|estar)\b",
    r"\b(?:tengo|tendre) (?:depresion|ansiedad|tdah|bipolar|trastorno)\b",
    rf"\bque (?:hago|debo hacer)\b[\w\s]{{0,30}}\b{_CONDITIONS}\b",
]
_CLINICAL_RE = [re.compile(p) for p in _CLINICAL]

_INJECTION = re.compile(
    r"\b(?:ignore|ignoring|disregard|forget|override|bypass)\b[\w\s,']{0,40}"
    r"\b(?:instructions?|prompts?|rules|directions|guidelines|context|programming|above|"
    r"previous|prior|everything|policies|documents?)\b"
    r"|\b(?:you are now|from now on,? you|act as (?:a|an|if)|pretend (?:to be|you are|you're)|"
    r"roleplay as|new instructions?|system prompt|developer mode|jailbreak|\bdan\b mode|"
    r"do anything now|reveal your|print your (?:prompt|instructions)|your (?:hidden|secret) "
    r"(?:prompt|instructions))"
    r"|\b(?:ai|assistant|chatbot|bot|language model|llm|agent)s?\b[\w\s,':;-]{0,30}"
    r"\b(?:must|should|shall) (?:always|never|now|tell|say|answer|respond|reply|ignore)\b"
    r"|\b(?:ignora|ignorar|olvida|olvidar)\b[\w\s]{0,30}\b(?:instrucciones|reglas|indicaciones)\b"
    r"|\b(?:ahora eres|actua como)\b"
)


def asks_for_clinical_advice(question: str) -> bool:
    text = fold(question)
    return any(p.search(text) for p in _CLINICAL_RE)


def is_instruction(sentence: str) -> bool:
    """Whether the text tries to instruct the agent ("ignore previous instructions…")."""
    return _INJECTION.search(fold(sentence)) is not None
