"""What many learners share, on one server or a lecture hall's cluster, built on the VAE library
(``vae``) and free of Streamlit, so that the app, the command line and the tests drive it alike.

    queue          the run queue: first queued, first run, names unique, a limit per learner
    store          its SQLite store, one database per checkpoint folder
    jobs           a run's progress as snapshots, its training call, its model as an epoch ended
    executors      where a run executes: threads of this process
    ray_executor   or each run a Ray actor on a cluster
    hall           a lecture hall's queue and store, served by one Ray actor to every app server
    gate           page model work while a run trains on this server's CPU
    sweep          ``python -m classroom.sweep``: a model per β through the queue
    board          the rate-distortion board's points
    lessons        lessons as data (``python -m classroom.lessons``)
    progress       a learner's progress: what they did, where they are, their answers
    classes        classes and learners, kept by the server: names, the teacher's moves and resets
"""
