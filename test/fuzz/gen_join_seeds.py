#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_join (test/fuzz/corpus/join/).

usage: gen_join_seeds.py

Each seed is a script in the format described at the top of fuzz_join.c:
byte 0 picks the tunables, then steps. Files are named by their SHA-256.
The scripts walk the join paths the fuzzer should start from: both orders,
stale events, null endpoint, moves, 4014/4006 close codes, backoff,
timeouts, kicks, leaves and raw JSON edge cases.
"""
import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))

CFG_DEFAULT, CFG_TINY, CFG_HUGE, CFG_BACKOFF = 0, 1, 2, 3


def cfg(kind=CFG_DEFAULT, max_sessions=0):
    return bytes([kind | (max_sessions << 2)])


def join(ch, flags=0):
    return bytes([0, ch, flags])


def leave():
    return bytes([1])


def state_raw(text):
    b = text.encode() if isinstance(text, str) else text
    return bytes([2]) + struct.pack(">H", len(b)) + b


def server_raw(text):
    b = text.encode() if isinstance(text, str) else text
    return bytes([3]) + struct.pack(">H", len(b)) + b


def state(ch, sess=0, other_user=False, no_channel_key=False,
          other_guild=False):
    """ch 0 = null, 1..3; sess 0..2 = sA..sC, 3 = absent."""
    v = (1 if other_user else 0) | (ch << 1) | (sess << 3)
    v |= 0x40 if no_channel_key else 0
    v |= 0x80 if other_guild else 0
    return bytes([4, v])


def server(tok, ep=3, other_guild=False):
    """tok 0..15; ep 0 null, 1 absent, 2 "", 3..7 hosts."""
    v = (tok & 7) | (ep << 3) | (0x40 if tok >= 8 else 0)
    v |= 0x80 if other_guild else 0
    return bytes([5, v])


def ms(n):
    return bytes([6]) + struct.pack(">H", n)


def sec(n):
    return bytes([7, n])


def close(index):
    """index into fuzz_join.c's close_codes table."""
    return bytes([8, index])


def close_code(code):
    return bytes([8, 0x80]) + struct.pack(">H", code)


def conn(s):
    return bytes([9, s])


def expiry():
    return bytes([10])


def jump(seconds):
    return bytes([11]) + struct.pack(">I", seconds)


READY, NEED_SESSION, WAIT_SERVER, DISCONNECTED = 2, 4, 5, 6
C4006, C4014, C1006, C4004, C4022 = 9, 13, 3, 7, 19

STATE_JSON = (
    '{"member":{"user":{"id":"80351110224678912"}},'
    '"user_id":"80351110224678912","suppress":false,'
    '"session_id":"90326bd25d71d39b9ef95b299e3872ff","self_mute":false,'
    '"self_deaf":true,"guild_id":"41771983423143936",'
    '"channel_id":"127121515262115840"}')
SERVER_JSON = ('{"token":"raw_token","guild_id":"41771983423143936",'
               '"endpoint":"sweetwater-12345.discord.media:443"}')


def save(data):
    d = os.path.join(here, "corpus", "join")
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print(name, len(data))


def connected(c=CFG_DEFAULT, ms_=0):
    return cfg(c, ms_) + join(1) + state(1, 0) + server(0, 3)


def main():
    # Both orders, then a voice READY and a leave.
    save(connected() + conn(READY) + ms(500) + leave())
    save(cfg() + join(1, 3) + server(0, 3) + ms(20) + state(1, 0) +
         conn(READY) + leave() + join(2) + leave())
    # Stale events: another channel, the echo of a leave, another user,
    # another guild, a used token after a re-join, a null endpoint first.
    save(cfg() + join(1) + state(2, 1) + state(0, 3) + state(1, 2, True) +
         server(1, 3, True) + server(0, 0) + state(1, 0) + server(0, 4) +
         join(2) + server(0, 4) + state(2, 1) + server(1, 5) + sec(1))
    # Null endpoint: suspend, then a new server in time, then a timeout.
    save(connected() + conn(READY) + server(0, 0) + sec(3) + server(2, 4) +
         conn(READY) + server(2, 2) + sec(11) + expiry())
    # The join times out; a second join after the end is refused.
    save(cfg() + join(3) + state(3, 1) + sec(10) + join(1) + leave())
    # Kicked: a null channel for us while connected.
    save(connected() + conn(READY) + state(0, 0) + state(1, 0))
    save(connected() + state(0, 3, no_channel_key=True))
    # Moved by someone: state first, then server; then server first.
    save(connected() + conn(READY) + state(2, 1) + server(2, 4) +
         conn(READY) + server(3, 5) + state(3, 2) + conn(READY) + leave())
    # Same channel, new session id after a lone server update.
    save(connected() + conn(READY) + server(4, 4) + state(1, 1) + ms(10))
    # 4014 then a new server; 4014 then the wait runs out.
    save(connected() + conn(READY) + close(C4014) + ms(100) + server(5, 6) +
         conn(READY) + close(C4014) + sec(6))
    save(connected() + close(C4022) + close(C4014) + expiry())
    # 4006: new sessions with backoff until the limit.
    save(connected(CFG_DEFAULT, 2) + close(C4006) + state(1, 1) +
         server(6, 3) + close(C4006) + expiry() + state(1, 2) + server(7, 4) +
         close(C4006) + sec(1))
    save(connected(CFG_BACKOFF) + close(C4006) + close(C4006) + state(1, 1) +
         server(8, 3) + close(C4006) + sec(3) + close_code(4009) + expiry() +
         expiry() + conn(READY))
    # Resume and fatal codes, raw connection states (including invalid).
    save(connected() + close(C1006) + conn(READY) + close(C4004) +
         conn(READY))
    save(cfg() + conn(READY) + join(0) + join(1) + conn(0) + state(1, 0) +
         server(0, 3) + conn(0) + conn(7) + conn(1) + conn(3) +
         conn(DISCONNECTED))
    # Tunables at both extremes.
    save(connected(CFG_TINY) + ms(1) + expiry() + join(1))
    save(cfg(CFG_TINY) + join(1) + expiry() + join(1) + state(1, 0) +
         server(0, 3) + close(C4006) + expiry() + expiry())
    save(connected(CFG_HUGE) + close(C4006) + close(C4006) + expiry() +
         server(0, 0) + jump(0xFFFFFFFF) + expiry())
    save(cfg(CFG_HUGE) + join(1) + jump(0xFFFFFFFF) + jump(0xFFFFFFFF) +
         state(1, 0) + server(1, 3) + close(C4014) + expiry())
    # Regressions: huge tunables wrapped deadlines into the past.
    save(cfg(CFG_HUGE) + ms(1) + join(1))
    save(connected(CFG_HUGE) + ms(1) + server(0, 0))
    save(connected(CFG_HUGE, 5) + ms(1) + close(C4006) + conn(READY) +
         close(C4006) + close(C4006) + close(C4006) + close(C4006))
    # The clock reaches the saturated deadline (NONE - 1): the deadlines
    # set then cannot lie after it (a harness false alarm, kept).
    save(connected(CFG_HUGE) + close(C4006) + state(1, 1) + server(1, 3) +
         close(C4006) + expiry() + state(1, 2) + server(2, 3) +
         close(C4006) + expiry() + state(1, 0) + server(3, 3) +
         close(C4006) + expiry() + expiry())
    # Raw JSON: a real pair, then edge cases for the parser.
    save(cfg() + join(1) + state_raw(STATE_JSON) + server_raw(SERVER_JSON))
    save(cfg() + join(1) + server_raw(SERVER_JSON) +
         state_raw(STATE_JSON[:40]) + state_raw(STATE_JSON + " x") +
         state_raw(STATE_JSON.replace('"41771983423143936"',
                                      '41771983423143936')) +
         state_raw(STATE_JSON))
    for bad in [
            '{"guild_id":"41771983423143936","token":"t\\u0000x"}',
            b'{"guild_id":"41771983423143936","token":"t\xff"}',
            '{"guild_id":"41771983423143936","token":"' + "t" * 257 + '"}',
            '{"guild_id":"41771983423143936","token":"t","endpoint":"' +
            "e" * 401 + '"}',
            '{"guild_id":"41771983423143936","token":"t","endpoint":null}',
            '{"guild_id":"41771983423143936","token":"t","endpoint":""}',
            '{"guild_id":"0","token":"t","endpoint":"h:1"}',
            '{"guild_id":"41771983423143936","token":"t","endpoint":'
            '"h\\r\\nX: y"}',
    ]:
        save(cfg() + join(1) + state(1, 0) + server_raw(bad) + server(0, 3))
    for bad in [
            '{"guild_id":"41771983423143936","user_id":"80351110224678912",'
            '"channel_id":"127121515262115840"}',
            '{"guild_id":"41771983423143936","user_id":"80351110224678912",'
            '"channel_id":null,"session_id":null}',
            '{"guild_id":"41771983423143936","user_id":"80351110224678912",'
            '"channel_id":"18446744073709551616","session_id":"s"}',
            '{"guild_id":"41771983423143936","user_id":"80351110224678912",'
            '"channel_id":"127121515262115840","session_id":"' + "s" * 256 +
            '"}',
            '{"guild_id":"41771983423143936","user_id":"80351110224678912",'
            '"user_id":"1","channel_id":"127121515262115840",'
            '"session_id":"s"}',
    ]:
        save(cfg() + join(1) + server(0, 3) + state_raw(bad) + state(1, 0))


if __name__ == "__main__":
    main()
