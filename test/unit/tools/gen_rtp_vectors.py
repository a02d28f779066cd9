#!/usr/bin/env python3
# Regenerates the known-answer vectors in test_rtp.c with an independent
# implementation: OpenSSL through pyca/cryptography for AES-256-GCM and
# ChaCha20-Poly1305, and HChaCha20 written here (checked against
# draft-irtf-cfrg-xchacha section 2.2.1). Usage: python3 gen_rtp_vectors.py
# Independent (OpenSSL via pyca/cryptography + pure-Python HChaCha20) vectors.
import struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
def rotl(v,c): return ((v<<c)&0xffffffff)|(v>>(32-c))
def qr(s,a,b,c,d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],7)
def hchacha(key,n16):
    s=[0x61707865,0x3320646e,0x79622d32,0x6b206574]+list(struct.unpack('<8I',key))+list(struct.unpack('<4I',n16))
    for _ in range(10):
        qr(s,0,4,8,12);qr(s,1,5,9,13);qr(s,2,6,10,14);qr(s,3,7,11,15)
        qr(s,0,5,10,15);qr(s,1,6,11,12);qr(s,2,7,8,13);qr(s,3,4,9,14)
    return struct.pack('<8I',*(s[0:4]+s[12:16]))
# draft-irtf-cfrg-xchacha 2.2.1 check
assert hchacha(bytes(range(32)),bytes.fromhex('000000090000004a0000000031415927')).hex()=='82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'
def xchacha_seal(key,nonce24,pt,aad):
    sub=hchacha(key,nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b'\0'*4+nonce24[16:],pt,aad)
key=bytes((i*7+3)&0xff for i in range(32))
hdr=bytes([0x80|0x20|0x10|2, 0x80|0x78])+struct.pack('>HII',0x1234,0x89abcdef,0x11223344)+struct.pack('>II',0xdeadbeef,0xcafef00d)+bytes.fromhex('bede0002')
ext=bytes.fromhex('10aa0000'+'90010000')
payload=b'opus-frame-data'
pad=bytes.fromhex('000003')
body=ext+payload+pad
ctr=0x01020304
n=struct.pack('>I',ctr)
aes=AESGCM(key).encrypt(n+b'\0'*8,body,hdr)
xc=xchacha_seal(key,n+b'\0'*20,body,hdr)
print('plain', (hdr+body).hex())
print('aes', (hdr+aes+n).hex())
print('xchacha', (hdr+xc+n).hex())
# simple bot packet
h2=bytes([0x80,0x78])+struct.pack('>HII',65535,4294967000,0x0000abcd)
p2=bytes([0xf8,0xff,0xfe])
n2=struct.pack('>I',0)
print('bot_plain', (h2+p2).hex())
print('bot_aes', (h2+AESGCM(key).encrypt(n2+b'\0'*8,p2,h2)+n2).hex())
print('bot_xchacha', (h2+xchacha_seal(key,n2+b'\0'*20,p2,h2)+n2).hex())
