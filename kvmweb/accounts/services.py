from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser


def admin_ensure(*, username: str, password: str | None) -> tuple[AbstractBaseUser, bool, str | None]:
    """Create the first admin if it does not exist. Returns (user, created, generated password or None).

    An existing account keeps its password unless one is given explicitly.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    generated = None
    created = user is None
    if user is None:
        if not password:
            password = generated = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
    elif password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created, generated
