"""Authentication and authorization: the plugin chain, the password file, the ACL file."""

from ._acl import Acl, AclFileError, parse_acl, read_acl_file
from ._chain import Action, AuthChain, Authenticator, Authorizer, ClientInfo, Verdict
from ._files import AclFileAuthorizer, PasswordFileAuthenticator
from ._passwd import (
    DEFAULT_ITERATIONS,
    PasswordFileError,
    PasswordHash,
    hash_password,
    parse_hash,
    read_password_file,
    write_password_file,
)

__all__ = [
    "DEFAULT_ITERATIONS",
    "Acl",
    "AclFileAuthorizer",
    "AclFileError",
    "Action",
    "AuthChain",
    "Authenticator",
    "Authorizer",
    "ClientInfo",
    "PasswordFileAuthenticator",
    "PasswordFileError",
    "PasswordHash",
    "Verdict",
    "hash_password",
    "parse_acl",
    "parse_hash",
    "read_acl_file",
    "read_password_file",
    "write_password_file",
]
