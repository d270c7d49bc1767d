"""Certificates made for the tests: a CA, a server certificate, and client certificates that
are good, expired, or signed by a CA the broker does not trust."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class Pair:
    cert: str
    key: str


def _name(common_name: str, org: str = "culex tests") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> Pair:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pair(str(cert_path), str(key_path))


def make_ca(directory: Path, stem: str) -> tuple[Pair, x509.Certificate,
                                                 ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{stem} CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, stem, cert, key), cert, key


def make_leaf(directory: Path, stem: str, common_name: str, ca: x509.Certificate,
              ca_key: ec.EllipticCurvePrivateKey, *, server: bool = False,
              expired: bool = False) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = ((NOW - datetime.timedelta(days=30), NOW - datetime.timedelta(days=1))
                  if expired else (NOW - datetime.timedelta(days=1),
                                   NOW + datetime.timedelta(days=30)))
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return _write(directory, stem, builder.sign(ca_key, hashes.SHA256()), key)


@dataclass
class CertSet:
    ca: Pair
    server: Pair
    client: Pair
    expired: Pair
    foreign: Pair
    other_ca: Pair
    other_server: Pair  # a server certificate signed by the other CA, for reload tests


def make_cert_set(directory: Path) -> CertSet:
    ca, ca_cert, ca_key = make_ca(directory, "ca")
    other, other_cert, other_key = make_ca(directory, "other")
    return CertSet(
        ca=ca,
        server=make_leaf(directory, "server", "localhost", ca_cert, ca_key, server=True),
        client=make_leaf(directory, "client", "device-1", ca_cert, ca_key),
        expired=make_leaf(directory, "expired", "device-2", ca_cert, ca_key, expired=True),
        foreign=make_leaf(directory, "foreign", "device-1", other_cert, other_key),
        other_ca=other,
        other_server=make_leaf(directory, "other-server", "localhost", other_cert, other_key,
                               server=True),
    )
