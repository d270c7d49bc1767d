"""Authentication and authorization: the plugin chain, the password file, the ACL file.

The file-backed links are imported on first use: a broker without password or ACL files never
loads them (a smaller idle footprint).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._chain import (
    Action,
    AuthChain,
    Authenticator,
    AuthExchange,
    AuthMethod,
    Authorizer,
    ClientInfo,
    Verdict,
)

if TYPE_CHECKING:
    from ._acl import Acl, AclFileError, parse_acl, read_acl_file
    from ._files import AclFileAuthorizer, PasswordFileAuthenticator
    from ._passwd import (
        DEFAULT_ITERATIONS,
        Credential,
        PasswordFileError,
        PasswordHash,
        hash_password,
        parse_hash,
        read_password_file,
        write_password_file,
    )
    from ._scram import (
        DEFAULT_SCRAM_ITERATIONS,
        AuthenticationFailed,
        ScramCredential,
        ScramMethod,
        scram_credential,
    )

_LAZY = {
    "Acl": "_acl", "AclFileError": "_acl", "parse_acl": "_acl", "read_acl_file": "_acl",
    "AclFileAuthorizer": "_files", "PasswordFileAuthenticator": "_files",
    "DEFAULT_ITERATIONS": "_passwd", "PasswordFileError": "_passwd", "PasswordHash": "_passwd",
    "hash_password": "_passwd", "parse_hash": "_passwd", "read_password_file": "_passwd",
    "write_password_file": "_passwd", "Credential": "_passwd",
    "DEFAULT_SCRAM_ITERATIONS": "_scram", "AuthenticationFailed": "_scram",
    "ScramCredential": "_scram", "ScramMethod": "_scram", "scram_credential": "_scram",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_SCRAM_ITERATIONS",
    "Acl",
    "AclFileAuthorizer",
    "AclFileError",
    "Action",
    "AuthChain",
    "AuthExchange",
    "AuthMethod",
    "AuthenticationFailed",
    "Authenticator",
    "Authorizer",
    "ClientInfo",
    "Credential",
    "PasswordFileAuthenticator",
    "PasswordFileError",
    "PasswordHash",
    "ScramCredential",
    "ScramMethod",
    "Verdict",
    "hash_password",
    "parse_acl",
    "parse_hash",
    "read_acl_file",
    "read_password_file",
    "scram_credential",
    "write_password_file",
]
