"""``python -m liger_iris_pipeline.simulate``: write a simulated data set."""

from .dataset import main

main()
