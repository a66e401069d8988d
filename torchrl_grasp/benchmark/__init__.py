"""The benchmark behind GRASP's claim: success that holds up as the horizon grows, reached faster.

``python -m torchrl_grasp.benchmark --help`` runs it; :mod:`.suite` names the environments and
their learned world models, :mod:`.planners` the planners and their published settings,
:mod:`.episodes` plans and executes one episode in the real env, :mod:`.report` turns episodes
into the table, the JSON records and the plot.
"""
