from django.contrib.auth.hashers import Argon2PasswordHasher


class LightArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with small costs, so that the many sign-ins of the in-process tests stay fast.

    Production (and the tests against live City processes) keep Django's costs: about 0.1-0.2 s a hash.
    """

    time_cost = 1
    memory_cost = 4096  # KiB
    parallelism = 1
