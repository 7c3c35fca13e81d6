"""Tabular machinery behind ``tasks/tabular.py``: column typing and checks, model families, search, ensembling.

Everything here builds objects from scikit-learn, xgboost and lightgbm classes only, so the saved
``model.joblib`` loads in a process that imports none of trainforge.
"""
