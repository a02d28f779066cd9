#!/usr/bin/env python3
"""Writes protocol-shaped seeds for fuzz_gateway (test/fuzz/corpus/gateway/).

usage: gen_gateway_seeds.py

Each seed is a script in the format described at the top of
fuzz_gateway.c. The scripts walk the main gateway through Hello, Identify,
READY, heartbeats, voice dispatches, op 7, op 9, resumes, every close-code
family and malformed frames, so that the fuzzer starts from the deep
states. Files are named by their SHA-256.
"""
import hashlib
import json
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def text(obj):
    b = obj if isinstance(obj, bytes) else (
        obj.encode() if isinstance(obj, str) else
        json.dumps(obj, separators=(",", ":")).encode())
    return bytes([0]) + struct.pack(">H", len(b)) + b


def ms(n):
    return bytes([1]) + struct.pack(">H", n)


def close(code):
    return bytes([2]) + struct.pack(">H", code)


def opn():
    return bytes([3])


def canned(i):
    return bytes([4, i])


def op4(guild, channel, flags=0):
    return bytes([5, guild, channel, flags])


def app_close():
    return bytes([6])


def sec(n):
    return bytes([7, n])


def hello(interval=41250):
    return text({"op": 10, "d": {"heartbeat_interval": interval}})


def dispatch(t, s, d):
    return text({"op": 0, "t": t, "s": s, "d": d})


READY = dispatch("READY", 1, {
    "v": 10, "session_id": "abcdef0123456789",
    "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
    "user": {"id": "9", "username": "bot", "bot": True},
    "guilds": [{"id": "1", "unavailable": True}],
    "application": {"id": "9", "flags": 0}})
ACK = text({"op": 11})
VSU = dispatch("VOICE_STATE_UPDATE", 2, {
    "guild_id": "1", "channel_id": "2", "user_id": "9",
    "session_id": "90326bd25d71d39b9ef95b299e3872ff", "deaf": False,
    "mute": False, "self_deaf": True, "self_mute": False,
    "self_video": False, "suppress": False,
    "request_to_speak_timestamp": None,
    "member": {"user": {"id": "9"}, "roles": []}})
VSERVER = dispatch("VOICE_SERVER_UPDATE", 3, {
    "token": "my_token", "guild_id": "1",
    "endpoint": "sweetwater-12345.discord.media:443"})


def save(data):
    d = os.path.join(here, "corpus", "gateway")
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print(name, len(data))


def ready():
    return opn() + hello() + READY + ACK


def main():
    # Identify, READY, op 4 out, both voice dispatches, heartbeats.
    save(ready() + op4(1, 2, 2) + VSU + VSERVER + sec(42) + ACK + sec(42) +
         ACK + op4(1, 0) + dispatch("VOICE_STATE_UPDATE", 4, {
             "guild_id": "1", "channel_id": None, "user_id": "9",
             "session_id": "90326bd25d71d39b9ef95b299e3872ff"}) + app_close())
    # Dispatches in the other order, null endpoint, another user, unknown
    # dispatch names, GUILD_CREATE with voice states.
    save(ready() + op4(1, 2) + dispatch("VOICE_SERVER_UPDATE", 2, {
        "token": "t", "guild_id": "1", "endpoint": None}) + VSERVER +
         dispatch("VOICE_STATE_UPDATE", 4, {
             "guild_id": "1", "channel_id": "2", "user_id": "10",
             "session_id": "x"}) + VSU + dispatch("GUILD_CREATE", 5, {
                 "id": "1", "voice_states": [{
                     "channel_id": "2", "user_id": "9",
                     "session_id": "s"}]}) +
         dispatch("MESSAGE_CREATE", 6, {"content": "hi"}) +
         dispatch("TYPING_START", 7, None))
    # A dropped connection resumes: Resume, RESUMED, replayed dispatches.
    save(ready() + VSU + close(1006) + sec(6) + opn() + hello() +
         dispatch("RESUMED", 5, {}) + VSERVER + ACK + sec(45))
    # op 7 reconnect, then resume; op 1 heartbeat request.
    save(ready() + text({"op": 1, "d": 1}) + text({"op": 7, "d": None}) +
         ms(100) + sec(5) + opn() + hello() + canned(3) + canned(4))
    # op 9: not resumable (Identify after the wait), resumable.
    save(ready() + close(1006) + sec(6) + opn() + hello() +
         text({"op": 9, "d": False}) + sec(6) + READY + canned(5))
    save(ready() + close(4000) + sec(6) + opn() + hello() +
         text({"op": 9, "d": True}) + sec(6) + opn() + hello() +
         canned(3))
    # op 9 during Identify, before any session.
    save(opn() + hello() + text({"op": 9, "d": False}) + sec(6) + hello() +
         READY)
    # Every close-code family, each followed by a reconnect attempt.
    for code in (0, 1000, 1001, 1006, 4000, 4001, 4002, 4003, 4004, 4005,
                 4007, 4008, 4009, 4010, 4011, 4012, 4013, 4014, 4999):
        save(ready() + close(code) + sec(10) + opn() + hello() + READY)
    # A close while connecting and while waiting for Hello.
    save(close(0) + sec(2) + close(1006) + sec(5) + opn() + close(4000) +
         sec(9) + opn() + hello() + READY)
    # Zombie: no ACK for two intervals.
    save(opn() + hello(1000) + READY + sec(1) + sec(1) + sec(1) + opn() +
         hello(1000) + canned(3))
    # Rate limit: many op 4 before and after READY.
    save(opn() + op4(1, 2) * 70 + hello() + READY + op4(3, 4) * 70 +
         sec(61) + ACK)
    # Malformed frames: not JSON, not an object, unknown op, bad seq/t,
    # bad Hello values, bad READY, bad voice dispatch bodies, duplicates.
    bad_hellos = [
        {"op": 10, "d": {"heartbeat_interval": 0}},
        {"op": 10, "d": {"heartbeat_interval": -5}},
        {"op": 10, "d": {"heartbeat_interval": 1e300}},
        {"op": 10, "d": {"heartbeat_interval": 41250.5}},
        {"op": 10, "d": {}},
        {"op": 10, "d": None},
    ]
    for h in bad_hellos:
        save(opn() + text(h) + sec(6) + opn() + hello() + READY)
    frames = [
        b"", b"{", b"[]", b"null", b'"op"', b"{}", b'{"op":"0"}',
        b'{"op":42}', b'{"op":0,"s":1,"d":{}}', b'{"op":0,"t":5,"d":{}}',
        b'{"op":0,"t":"X","s":-1,"d":{}}',
        b'{"op":0,"t":"X","s":9007199254740992,"d":{}}',
        b'{"op":11,"op":11}', b'{"op":11} ', b'{"op":11}x',
        b'{"op":0,"t":"VOICE_STATE_UPDATE","s":2,"d":null}',
        b'{"op":0,"t":"VOICE_STATE_UPDATE","s":2,"d":{"guild_id":1,'
        b'"user_id":"9","channel_id":"2","session_id":"s"}}',
        b'{"op":0,"t":"VOICE_STATE_UPDATE","s":2,"d":{"guild_id":"1",'
        b'"user_id":"9","channel_id":"2"}}',
        b'{"op":0,"t":"VOICE_STATE_UPDATE","s":2,"d":{"guild_id":"1",'
        b'"user_id":"9","channel_id":"2","session_id":"a\\u0000b"}}',
        b'{"op":0,"t":"VOICE_SERVER_UPDATE","s":3,"d":{"guild_id":"1",'
        b'"endpoint":"h:443"}}',
        b'{"op":0,"t":"VOICE_SERVER_UPDATE","s":3,"d":{"guild_id":"1",'
        b'"token":"' + b"t" * 300 + b'","endpoint":"h:443"}}',
        b'{"op":0,"t":"VOICE_SERVER_UPDATE","s":3,"d":{"guild_id":"1",'
        b'"token":"t","endpoint":"\xff\xfe"}}',
        b'{"op":0,"t":"READY","s":1,"d":{"session_id":"s"}}',
        b'{"op":0,"t":"READY","s":1,"d":{"session_id":5,'
        b'"resume_gateway_url":"wss://r","user":{"id":"9"}}}',
        b'{"op":0,"t":"READY","s":1,"d":{"session_id":"s",'
        b'"resume_gateway_url":"http://r","user":{"id":"x"}}}',
    ]
    for i in range(0, len(frames), 4):
        seed = ready()
        for f in frames[i:i + 4]:
            seed += text(f) + ms(10)
        save(seed + sec(6) + opn() + hello() + canned(3))
    # A READY before Hello, dispatches before READY, the app closing.
    save(opn() + READY + VSU + hello() + VSU + READY + app_close() +
         canned(0) + opn())


if __name__ == "__main__":
    main()
