"""The FAU example layers with one bug (even kernel padding): see the module that
carries the comment "the bug"."""
