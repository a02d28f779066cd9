#!/usr/bin/env python3
"""Integration checks for dvoice-play (suite integ).

usage: check_play.py MODE DVOICE_PLAY GEN_SAMPLE SAMPLE_OPUS

Each mode runs the program as a user would and checks its exit status and
output: help (exit 0, every option documented), args (exit 2 on bad
arguments), input (exit 3 on unreadable or unsupported input), and sim-*
(play into the embedded simulator and check the verdict line: PASS and a
dominant frequency of 440 Hz).
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

OPTIONS = ["--guild", "--channel", "--sim", "--help", "--bitrate", "--quiet",
           "--gateway", "--ca-file", "--raw", "--pcm", "--verbose",
           "DISCORD_TOKEN"]


def run(args, stdin=None, env=None, timeout=90):
    e = dict(os.environ)
    e.pop("DISCORD_TOKEN", None)
    if env:
        e.update(env)
    p = subprocess.run(args, stdin=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def fail(msg, out="", err=""):
    print("FAIL:", msg)
    if out:
        print("--- stdout\n" + out)
    if err:
        print("--- stderr\n" + err)
    sys.exit(1)


def expect_exit(args, code, what, stdin=None, env=None, needle=None):
    rc, out, err = run(args, stdin=stdin, env=env)
    if rc != code:
        fail(f"{what}: exit {rc}, expected {code}", out, err)
    if needle is not None and needle not in err:
        fail(f"{what}: stderr lacks {needle!r}", out, err)
    print(f"ok: {what} -> exit {rc}")


def check_verdict(rc, out, err, what, frames_min, want_rc=0):
    if rc != want_rc:
        fail(f"{what}: exit {rc}", out, err)
    m = re.search(r"^simulator verdict: PASS: (\d+) packets, all decrypted "
                  r"and decoded, dominant frequency (\d+) Hz$", out, re.M)
    if not m:
        fail(f"{what}: no PASS verdict line", out, err)
    packets, hz = int(m.group(1)), int(m.group(2))
    if abs(hz - 440) > 3:
        fail(f"{what}: dominant frequency {hz} Hz, expected 440", out, err)
    if packets < frames_min:
        fail(f"{what}: only {packets} packets", out, err)
    steps = ["join requested", "main gateway READY",
             "op 4 Voice State Update sent",
             "VOICE_STATE_UPDATE + VOICE_SERVER_UPDATE received",
             "voice WebSocket open", "Ready", "IP discovery done",
             "Session Description", "first packet sent"]
    at = -1
    for step in steps:
        i = out.find("] " + step, at + 1)
        if i < 0:
            fail(f"{what}: timeline lacks {step!r} (in this order)", out, err)
        at = i
    # The bot's id comes from READY (no user id is configured).
    if not re.search(r"main gateway READY: bot user id [1-9]\d*$", out, re.M):
        fail(f"{what}: READY does not name the bot", out, err)
    print(f"ok: {what}: {packets} packets, {hz} Hz")


def main():
    mode, play, gen, sample = sys.argv[1:5]
    tmp = tempfile.mkdtemp(prefix="dvoice-play-")
    if mode == "help":
        rc, out, err = run([play, "--help"])
        if rc != 0:
            fail(f"--help exit {rc}", out, err)
        for o in OPTIONS:
            if o not in out:
                fail(f"--help does not mention {o}", out, err)
        for code in ["0", "2", "3", "4", "5", "130"]:
            if not re.search(r"^\s+%s\s" % code, out, re.M):
                fail(f"--help does not document exit status {code}", out)
        print("ok: --help mentions every option and exit status")
    elif mode == "args":
        expect_exit([play], 2, "no input", needle="no input")
        expect_exit([play, "--bogus", sample], 2, "unknown option",
                    needle="unknown option")
        expect_exit([play, sample], 2, "no guild/channel",
                    needle="--guild and --channel")
        expect_exit([play, "--guild", "x1", "--channel", "2", sample], 2,
                    "bad id")
        expect_exit([play, "--sim", "--bitrate", "5", sample], 2,
                    "bad bitrate")
        expect_exit([play, "--sim", "-"], 2, "stdin without --pcm")
        expect_exit([play, "--guild", "1", "--channel", "2", sample], 2,
                    "no token", needle="DISCORD_TOKEN")
        # The token must never be printed, whatever happens.
        secret = "sekrit.token.value"
        rc, out, err = run([play, "--guild", "1", "--channel", "2",
                            "--gateway", "ws://127.0.0.1:9/?v=10", sample],
                           env={"DISCORD_TOKEN": secret})
        if secret in out or secret in err:
            fail("the token was printed", out, err)
        if rc != 4:
            fail(f"unreachable gateway: exit {rc}, expected 4", out, err)
        print(f"ok: unreachable gateway -> exit 4, token never printed")
    elif mode == "input":
        missing = os.path.join(tmp, "missing.opus")
        expect_exit([play, "--sim", missing], 3, "missing file")
        junk = os.path.join(tmp, "junk.bin")
        with open(junk, "wb") as f:
            f.write(b"this is not audio at all\n" * 4)
        expect_exit([play, "--sim", junk], 3, "not Ogg or WAV",
                    needle="not an Ogg Opus or WAV file")
        wav = os.path.join(tmp, "t.wav")
        subprocess.check_call([gen, "--wav", wav, "0.2", "440"])
        data = bytearray(open(wav, "rb").read())
        data[24:28] = (44100).to_bytes(4, "little")
        data[28:32] = (44100 * 4).to_bytes(4, "little")
        bad = os.path.join(tmp, "44k.wav")
        open(bad, "wb").write(bytes(data))
        expect_exit([play, "--sim", bad], 3, "44.1 kHz WAV",
                    needle="44100 Hz")
        short = os.path.join(tmp, "10ms.opus")
        subprocess.check_call([gen, "--frame-ms", "10", short, "0.2", "440"])
        expect_exit([play, "--sim", short], 3, "10 ms Opus packets",
                    needle="20 ms")
        trunc = os.path.join(tmp, "trunc.opus")
        open(trunc, "wb").write(open(sample, "rb").read()[:40])
        expect_exit([play, "--sim", trunc], 3, "truncated Ogg")
    elif mode == "sim-ogg":
        rc, out, err = run([play, "--sim", sample])
        check_verdict(rc, out, err, "Ogg Opus into the simulator", 150)
    elif mode == "sim-split":
        f60 = os.path.join(tmp, "60ms.opus")
        subprocess.check_call([gen, "--frame-ms", "60", f60, "1.2", "440"])
        rc, out, err = run([play, "--sim", f60])
        check_verdict(rc, out, err, "60 ms packets split", 55)
        if "long packets split" not in out:
            fail("summary does not mention the split", out, err)
    elif mode == "sim-wav":
        wav = os.path.join(tmp, "t.wav")
        subprocess.check_call([gen, "--wav", wav, "1.5", "440"])
        rc, out, err = run([play, "--sim", "--bitrate", "96000", wav])
        check_verdict(rc, out, err, "WAV into the simulator", 70)
    elif mode == "sim-pcm":
        raw = os.path.join(tmp, "t.raw")
        subprocess.check_call([gen, "--raw", raw, "1.5", "440"])
        with open(raw, "rb") as f:
            p = subprocess.Popen([play, "--sim", "--pcm", "-"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, err = p.communicate(f.read(), timeout=90)
        check_verdict(p.returncode, out.decode(), err.decode(),
                      "PCM on a stdin pipe", 70)
    elif mode == "sim-sigint":
        # Ctrl-C mid-stream: five silence frames, op 4 with a null channel,
        # close; exit 130 and a clean verdict.
        f5 = os.path.join(tmp, "5s.opus")
        subprocess.check_call([gen, f5, "5", "440"])
        p = subprocess.Popen([play, "--sim", f5], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while time.time() < deadline:
            time.sleep(0.2)
            if p.poll() is not None:
                break
            # Interrupt once audio flows (the timeline is printed live).
            time.sleep(1.0)
            p.send_signal(signal.SIGINT)
            break
        out, err = p.communicate(timeout=60)
        out, err = out.decode(), err.decode()
        check_verdict(p.returncode, out, err, "Ctrl-C", 20, want_rc=130)
        if "leaving (interrupted)" not in err:
            fail("no 'leaving (interrupted)' note", out, err)
        m = re.search(r"decoded \((\d+) silence frames\)", out)
        if not m or int(m.group(1)) < 5:
            fail("the stream did not end with five silence frames", out, err)
        m = re.search(r"^summary: (\d+) packets sent", out, re.M)
        if not m or int(m.group(1)) >= 250:
            fail("Ctrl-C did not stop the stream early", out, err)
        print("ok: Ctrl-C left properly with exit 130")
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
