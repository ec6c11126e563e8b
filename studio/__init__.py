"""The app side of VAE Studio: what the pages share, one concern per module. The pages (``pages/``)
are thin views over these; the modelling itself is in ``vae``.

    resources  the device, MNIST, models on disk and the active one; ``per_model`` caching
    analysis   what pages derive from a model: encodings, projections, the vote, samplers, Inside
    films      a model's training film: layouts, neighbour agreement, the player's figures
    runs       the class's queue of runs, who this browser is to it, the run a page follows
    live       a run as every watching session sees it: snapshots, figures and model, shared
    gate       page model work while a run trains on this server's CPU
    board      the rate-distortion board's points
    learner    where a learner is in a lesson, what they have done, class mode
    figures    every Plotly figure
    views      widgets more than one page draws: the film player, the lesson panel, map notes
"""
