"""The FAU example layers with one bug (pooling overlap): see the module that
carries the comment "the bug"."""
