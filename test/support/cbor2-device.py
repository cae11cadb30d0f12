"""A device's side of the CBOR protocol, written with an independent CBOR implementation (Debian's python3-cbor2)
and python3-cryptography: it builds request files for mosquitto_pub -f and reads reply files mosquitto_sub wrote.

  cbor2-device.py request OUT REQUEST_ID [CN KEY_OUT]   a request; with CN, a P-256 key (PEM to KEY_OUT) and its CSR as DER
  cbor2-device.py reply IN OUT_DIR [KEY_FILE]           prints the reply as JSON (byte strings as their length and
                                                         type); writes its DER files; checks the key fits the certificate
"""
import json
import os
import sys
from datetime import timezone

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def request(out, request_id, cn=None, key_out=None):
    body = {'requestId': request_id}
    if cn is not None:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .sign(key, hashes.SHA256())
        )
        body['csr'] = csr.public_bytes(serialization.Encoding.DER)
        with open(key_out, 'wb') as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    with open(out, 'wb') as f:
        cbor2.dump(body, f)


def shown(value):
    if isinstance(value, bytes):
        return {'bytes': len(value)}
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value


def reply(path, out_dir, key_file=None):
    with open(path, 'rb') as f:
        data = f.read()
    body = cbor2.loads(data)
    summary = shown(body)
    summary['size'] = len(data)
    if body.get('status') == 'issued':
        for name in ('certificate', 'caCertificates'):
            for i, der in enumerate(body[name]):
                with open(os.path.join(out_dir, f'{name}-{i}.der'), 'wb') as f:
                    f.write(der)
        leaf = x509.load_der_x509_certificate(body['certificate'][0])
        if 'privateKey' in body:
            key = serialization.load_der_private_key(body['privateKey'], password=None)
        else:
            with open(key_file, 'rb') as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        summary['keyFits'] = leaf.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
        summary['subject'] = leaf.subject.rfc4514_string()
        summary['notAfterFits'] = int(leaf.not_valid_after.replace(tzinfo=timezone.utc).timestamp()) == body['notAfter']
        summary['serialFits'] = format(leaf.serial_number, 'x') == body['serialNumber'].lstrip('0')
    print(json.dumps(summary))


if __name__ == '__main__':
    command, *args = sys.argv[1:]
    {'request': request, 'reply': reply}[command](*args)
