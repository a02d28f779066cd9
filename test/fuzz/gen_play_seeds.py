#!/usr/bin/env python3
"""Regenerates the seed corpora of fuzz_play_ogg and fuzz_play_wav.

usage: gen_play_seeds.py BUILD_DIR/examples/gen_sample

Seeds are tiny (a few hundred bytes): short tones from the build-time
generator, plus hand-made WAV headers. Each file is named by its SHA-256;
byte 0 is the fuzz target's control byte (chunk size and format).
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))


def save(target, ctl, body):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    data = bytes([ctl]) + body
    name = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print(target, name, len(data))


def gen(tool, *args):
    fd, path = tempfile.mkstemp()
    os.close(fd)
    subprocess.check_call([tool, *args[:-2], path, *args[-2:]])
    data = open(path, "rb").read()
    os.unlink(path)
    return data


def wav(tag, ch, rate, bits, data, extra=b""):
    fmt = struct.pack("<HHIIHH", tag, ch, rate, rate * ch * bits // 8,
                      ch * bits // 8, bits) + extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def main():
    tool = sys.argv[1]
    ogg20 = gen(tool, "--bitrate", "6000", "0.06", "440")
    save("play_ogg", 0x7f, ogg20)
    save("play_ogg", 0x00, ogg20)
    save("play_ogg", 0x83, gen(tool, "--bitrate", "6000", "--frame-ms",
                               "60", "0.06", "440"))
    save("play_ogg", 0x10, gen(tool, "--bitrate", "6000", "--frame-ms",
                               "10", "0.02", "440"))
    pcm = bytes(range(256)) * 2
    save("play_wav", 0x3f, wav(1, 2, 48000, 16, pcm))
    save("play_wav", 0x41, wav(1, 1, 48000, 16, pcm[:301]))
    ext = struct.pack("<HHI", 22, 16, 3) + bytes([1, 0]) + bytes(14)
    save("play_wav", 0x02, wav(0xFFFE, 2, 48000, 16, pcm[:64], ext))
    save("play_wav", 0x05, wav(1, 2, 44100, 16, pcm[:16]))
    save("play_wav", 0x85, pcm[:77])


if __name__ == "__main__":
    main()
