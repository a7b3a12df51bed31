"""Experiments: grids of runs (datasets x backbones x variants x seeds), result tables with
paired significance tests, and the noise-robustness study.

- :mod:`lmmrec.experiment.spec`: the experiment file (pydantic) and its out folder's layout;
- :mod:`lmmrec.experiment.plan`: the cells of an experiment, every problem found up front;
- :mod:`lmmrec.experiment.stale`: whether a finished run still matches its cell's config;
- :mod:`lmmrec.experiment.grid`: running the cells in order, resumable;
- :mod:`lmmrec.experiment.stats`: mean ± std, relative improvement, t-test, Wilcoxon;
- :mod:`lmmrec.experiment.noise`: fake interactions, text noise, the noise study and its plot.
"""
