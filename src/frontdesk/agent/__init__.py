"""The agent: the knowledge base and grounded answers (and, beside them, understanding).

Nothing here touches the database or the network: services load what the agent reads and
store what it says.
"""
