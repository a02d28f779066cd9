#!/usr/bin/env python3
"""Generates the seed corpora of the MLS fuzz targets (our own DAVE-shaped
structures with valid P-256 signatures; nothing copied from test vectors).
Run from test/fuzz/: python3 gen_mls_seeds.py  (needs python3-cryptography).
Seeds are named by their SHA-256."""
import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def varint(n):
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack(">H", 0x4000 | n)
    return struct.pack(">I", 0x80000000 | n)


def opaque(b):
    return varint(len(b)) + b


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def keypair():
    k = ec.generate_private_key(ec.SECP256R1())
    pub = k.public_key().public_bytes(serialization.Encoding.X962,
                                      serialization.PublicFormat.UncompressedPoint)
    return k, pub


def sign(k, label, content):
    tbs = opaque(b"MLS 1.0 " + label) + opaque(content)
    return k.sign(tbs, ec.ECDSA(hashes.SHA256()))


CAPS = opaque(u16(1)) + opaque(u16(2)) + opaque(b"") + opaque(b"") + opaque(u16(1))


def leaf_node(uid, source=1, parent_hash=b"", gid=b"", index=0):
    sk, spub = keypair()
    _, epub = keypair()
    body = opaque(epub) + opaque(spub) + u16(1) + opaque(u64(uid)) + CAPS
    body += bytes([source])
    if source == 1:
        body += u64(0) + u64(2**64 - 1)
    elif source == 3:
        body += opaque(parent_hash)
    body += opaque(b"")
    tbs = body
    if source in (2, 3):
        tbs += opaque(gid) + u32(index)
    return body + opaque(sign(sk, b"LeafNodeTBS", tbs)), sk


def key_package(uid):
    sk_leaf, ipub = keypair()
    leaf, sk = leaf_node(uid)
    body = u16(1) + u16(2) + opaque(ipub) + leaf + opaque(b"")
    return body + opaque(sign(sk, b"KeyPackageTBS", body))


def tree(n, with_parent=False):
    nodes = []
    for i in range(n):
        if i:
            if with_parent and i == 1:
                _, ppub = keypair()
                nodes.append(b"\x01\x02" + opaque(ppub) + opaque(b"") +
                             opaque(u32(0) + u32(1)))
            else:
                nodes.append(b"\x00")
        leaf, _ = leaf_node(1000 + i)
        nodes.append(b"\x01\x01" + leaf)
    return opaque(b"".join(nodes))


GID = u64(927310423890473011)


def public_message(content_type, body, sender_type=2, tags=False):
    fc = opaque(GID) + u64(5) + bytes([sender_type]) + u32(0) + opaque(b"")
    fc += bytes([content_type]) + body
    sk, _ = keypair()
    sig = sign(sk, b"FramedContentTBS", u16(1) + u16(1) + fc)
    msg = u16(1) + u16(1) + fc + opaque(sig)
    if content_type == 3:
        msg += opaque(os.urandom(32))
    if sender_type == 1:
        msg += opaque(os.urandom(32))
    return msg


def update_path(n_nodes):
    leaf, _ = leaf_node(77, source=3, parent_hash=os.urandom(32), gid=GID,
                        index=0)
    nodes = b""
    for _ in range(n_nodes):
        _, pub = keypair()
        ct = opaque(os.urandom(65)) + opaque(os.urandom(48))
        nodes += opaque(pub) + opaque(ct)
    return leaf + opaque(nodes)


def welcome():
    egs = opaque(os.urandom(32)) + opaque(os.urandom(65)) + opaque(os.urandom(80))
    return u16(2) + opaque(egs) + opaque(os.urandom(120))


def group_info():
    _, espub = keypair()
    es = opaque(espub) + u16(1) + opaque(b"\x00")
    exts = opaque(u16(5) + opaque(opaque(es)))
    gc = u16(1) + u16(2) + opaque(GID) + u64(3) + opaque(os.urandom(32))
    gc += opaque(os.urandom(32)) + exts
    gi = gc + opaque(u16(2) + opaque(tree(2))) + opaque(os.urandom(32)) + u32(0)
    sk, _ = keypair()
    return gi + opaque(sign(sk, b"GroupInfoTBS", gi)), es


def put(name, data):
    d = os.path.join("corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha256(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    kp = key_package(158533742254751744)
    put("mls_key_package", kp)
    put("mls_key_package", key_package(1))
    put("mls_message", u16(1) + u16(5) + kp)
    put("mls_message", public_message(2, u16(1) + kp))
    put("mls_message", public_message(2, u16(3) + u32(1)))
    refs = opaque(b"\x02" + opaque(os.urandom(32)) + b"\x02" + opaque(os.urandom(32)))
    put("mls_message", public_message(3, refs + b"\x00", sender_type=1))
    put("mls_message", public_message(3, refs + b"\x01" + update_path(2),
                                      sender_type=1))
    gi, es = group_info()
    put("mls_message", es)
    put("mls_message", u16(1) + u16(3) + welcome())
    put("mls_welcome", welcome())
    put("mls_welcome", gi)
    put("mls_welcome", opaque(os.urandom(32)) + b"\x01" + opaque(os.urandom(32)) + opaque(b""))
    put("mls_ratchet_tree", tree(1))
    put("mls_ratchet_tree", tree(3))
    put("mls_ratchet_tree", tree(2, with_parent=True))


if __name__ == "__main__":
    main()
