"""
securetcp's tests, run with C{trial tests} against the installed package.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "securetcp",
    deadline=None,
    derandomize=True,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("securetcp")
