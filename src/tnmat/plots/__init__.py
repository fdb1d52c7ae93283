"""Figures (matplotlib, PNG): one function per figure."""
