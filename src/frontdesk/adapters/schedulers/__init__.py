"""Scheduling systems: webhook parsing and signatures (Calendly, Cal.com) and HTTP clients
(FHIR R4 servers, iCalendar feeds). Nothing here touches the database."""
