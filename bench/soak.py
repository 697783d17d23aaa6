#!/usr/bin/env python3
"""bench/soak.py: soak a castore mount and check every byte it serves.

Usage: bench/soak.py MOUNTPOINT CORPUS FILES_LIST SECONDS STORE CASTORE [DAEMONCTL]

MOUNTPOINT serves root "tree" imported from CORPUS (FILES_LIST: its files, NUL-separated,
relative to CORPUS, as bench/mount.sh writes files.list) and root "moving". For SECONDS:
- 4 readers pick files at random, check each whole file's BLAKE3 (`b3sum`) against its
  user.tvix.castore.blob.digest xattr and one random pread against CORPUS;
- a walker lstats every entry of the tree, again and again;
- the page cache is dropped every 3 s (root), so the kernel forgets and asks again;
- `CASTORE import --store STORE` re-points root "moving" between two directories every 1.5 s,
  and the mount must show the new one after its --root-ttl (start the mount with --root-ttl 1s);
- with DAEMONCTL, `DAEMONCTL stop` then `DAEMONCTL start` run every 40 s (a daemon killed and
  restarted under the mount): EIO is then allowed and counted, wrong bytes never.
Prints the counts and exits 1 on any error. (docs/cache.md, "Memory"; session 46.)
"""
import base64, os, random, signal, subprocess, sys, threading, time
mnt, corpus, files_list, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
files = [f.decode() for f in open(files_list, "rb").read().split(b"\0") if f]
stop = time.time() + seconds
errors, counts, lock = [], {"read": 0, "stat": 0, "drop": 0, "repoint": 0, "walk": 0, "eio": 0, "outage": 0}, threading.Lock()

def count(k, n=1):
    with lock: counts[k] += n

def reader(seed):
    rnd = random.Random(seed)
    while time.time() < stop:
        rel = rnd.choice(files)
        p = os.path.join(mnt, "tree", rel)
        try:
            want = base64.b64decode(os.getxattr(p, "user.tvix.castore.blob.digest").decode()[3:]).hex()
            r = subprocess.run(["b3sum", "--no-names", p], capture_output=True, text=True)
            if r.returncode != 0:
                # b3sum maps the file: an I/O error under the mapping is SIGBUS, not an EIO message.
                if "Input/output error" in r.stderr or r.returncode == -signal.SIGBUS:
                    count("eio"); continue
                errors.append(f"b3sum {rel}: {r.stderr.strip()}"); continue
            got = r.stdout.strip()
            src = os.path.join(corpus, rel)
            if got != want:
                errors.append(f"digest mismatch {rel}: {got} != {want}")
            elif os.path.getsize(p) != os.path.getsize(src):
                errors.append(f"size mismatch {rel}")
            else:
                # a random pread checked against the source
                size = os.path.getsize(p)
                if size:
                    off = rnd.randrange(size); n = rnd.randrange(1, 65536)
                    with open(p, "rb") as a, open(src, "rb") as b:
                        if os.pread(a.fileno(), n, off) != os.pread(b.fileno(), n, off):
                            errors.append(f"pread mismatch {rel} at {off}+{n}")
            count("read")
        except OSError as e:
            if e.errno == 5: count("eio")
            else: errors.append(f"{rel}: {e!r}")
        except Exception as e:
            errors.append(f"{rel}: {e!r}")

def walker():
    while time.time() < stop:
        n = 0
        for dirpath, dirnames, filenames in os.walk(os.path.join(mnt, "tree")):
            for f in filenames:
                try:
                    os.lstat(os.path.join(dirpath, f)); n += 1
                except OSError as e:
                    if e.errno == 5: count("eio")
                    else: errors.append(f"lstat {f}: {e!r}")
            if time.time() > stop: break
        count("stat", n); count("walk")

def dropper():
    while time.time() < stop:
        time.sleep(3)
        subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"])
        count("drop")

def repointer(store, castore):
    i = 0
    while time.time() < stop:
        src = ["/usr/share/doc/apt", "/usr/share/zoneinfo/Europe"][i % 2]
        r = subprocess.run([castore, "import", "--store", store, src, "--name", "moving"], capture_output=True)
        if r.returncode != 0:
            time.sleep(1); continue
        time.sleep(1.5)
        want = sorted(os.listdir(src))
        try:
            got = sorted(os.listdir(os.path.join(mnt, "moving")))
            if got != want:
                errors.append(f"moving root shows {got[:3]} after its re-point to {src}")
        except OSError as e:
            if e.errno == 5: count("eio")
            else: errors.append(f"moving: {e!r}")
        count("repoint"); i += 1

def killer():
    if len(sys.argv) < 8: return
    while time.time() < stop - 30:
        time.sleep(40)
        subprocess.run(["sh", "-c", sys.argv[7] + " stop"]); time.sleep(5)
        subprocess.run(["sh", "-c", sys.argv[7] + " start"]); count("outage")

threads = [threading.Thread(target=killer)] + [threading.Thread(target=reader, args=(s,)) for s in range(4)] + [threading.Thread(target=walker), threading.Thread(target=dropper), threading.Thread(target=repointer, args=(sys.argv[5], sys.argv[6]))]
for t in threads: t.start()
for t in threads: t.join()
print(counts, "errors:", len(errors))
for e in errors[:20]: print(" ", e)
sys.exit(1 if errors else 0)
