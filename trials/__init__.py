"""Worker side: one trial function per task (train and evaluate one config), their typed configs, the
Ray Tune trainable that runs them, and what a trial measures (device, time, memory).

    from trials.trainable import TASKS, trial_function
    run_trial = trial_function("teanet")      # trials.teanet.run_trial
    metrics = run_trial(config, report)       # report(dict) after every epoch; returns the last metrics

Like ``models`` and ``spectra``, nothing here imports the driver's ``platform`` package: a Ray worker
has the standard-library module loaded already. ``trials`` may import ``models`` and ``spectra``;
neither of them imports ``trials``.
"""
