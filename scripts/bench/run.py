#!/usr/bin/env python3
"""The driver of scripts/bench.sh: data set, server, mount, the cases, the table and the JSON.

Every case is timed through a fresh mount (so the kernel's page cache and the mount's caches
start empty unless the case says otherwise) and with curl against the same server; the
server's /_server/stats counters, reset before each measurement, give the requests each side
made. Python 3 standard library only.
"""

import argparse
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

MiB = 1024 * 1024
DISTANT = ["--latency", "20ms", "--bandwidth", "50Mi"]
PER_PAGE = 100


def log(msg):
    print(msg, flush=True)


class Sizes:
    def __init__(self, quick):
        self.name = "quick" if quick else "full"
        self.big = (256 if quick else 1024) * MiB
        self.many = 2000 if quick else 10000
        # find/stat tree: folders x files
        self.tree = (20, 100) if quick else (100, 100)
        # entries for the memory case: folders x files
        self.wide = (10, 2000) if quick else (10, 10000)
        self.small = 200 if quick else 1000
        self.random_reads = 1000


# --- data set ---------------------------------------------------------------------------


def write_text_files(folder, count, size, prefix="f"):
    os.makedirs(folder, exist_ok=True)
    width = len(str(count - 1))
    for i in range(count):
        line = f"{prefix}{i:0{width}d} of the cloudify-fs benchmark\n"
        body = (line * (size // len(line) + 1))[:size] if size else line
        with open(os.path.join(folder, f"{prefix}{i:0{width}d}.txt"), "w") as f:
            f.write(body)


def generate(base, sizes):
    """The local tree the server imports, and the files the write cases upload."""
    src = os.path.join(base, "src")
    upload = os.path.join(base, "upload")
    marker = os.path.join(base, ".generated")
    if os.path.exists(marker):
        return src, upload
    log(f"==> generating the {sizes.name} data set in {base}")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(upload, ignore_errors=True)
    os.makedirs(os.path.join(src, "big"))
    with open(os.path.join(src, "big", "big.zip"), "wb") as f:
        # A zip signature, so the server's type check takes it as the .zip it is named.
        f.write(b"PK\x03\x04")
        left = sizes.big - 4
        while left > 0:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n
    write_text_files(os.path.join(src, "many"), sizes.many, 0)
    folders, files = sizes.tree
    for d in range(folders):
        write_text_files(os.path.join(src, "tree", f"d{d:03d}"), files, 0)
    folders, files = sizes.wide
    for d in range(folders):
        write_text_files(os.path.join(src, "wide", f"w{d:02d}"), files, 0)
    write_text_files(os.path.join(upload, "small"), sizes.small, 4096)
    open(marker, "w").close()
    return src, upload


# --- processes ----------------------------------------------------------------------------


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_process(proc, name, grace=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        log(f"    {name} did not stop within {grace}s: killing it")
        proc.kill()
        proc.wait()


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4].replace("\\040", " ") == path:
                return True
    return False


class Server:
    def __init__(self, binary, data, key_file, log_path):
        self.binary, self.data, self.key_file, self.log_path = binary, data, key_file, log_path
        self.proc = None
        self.url = None

    def start(self, extra, import_tree=None):
        args = [self.binary, "--listen", "127.0.0.1:0", "--data", self.data,
                "--keys-file", self.key_file, "--no-access-log"] + extra
        if import_tree:
            args += ["--import", import_tree]
        out_path = self.log_path + ".out"
        with open(out_path, "w") as out, open(self.log_path, "a") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        # The first start imports the whole data set through the upload path: minutes.
        deadline = time.monotonic() + 3600
        while True:
            with open(out_path) as f:
                for line in f:
                    if line.startswith("listening on "):
                        self.url = line.split()[2]
                        return
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: cloudify-server ended (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise SystemExit("bench: cloudify-server did not start within an hour")
            time.sleep(0.2)

    def stop(self):
        stop_process(self.proc, "cloudify-server")
        self.proc = None


class Mount:
    def __init__(self, binary, mnt, key_file, log_path):
        self.binary, self.mnt, self.key_file, self.log_path = binary, mnt, key_file, log_path
        self.proc = None

    def start(self, url, cache_dir):
        os.makedirs(self.mnt, exist_ok=True)
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        # The API budget (240 calls a minute by default, as a real Cloudify throttles) is
        # lifted: the benchmark measures the mount, not the pacing.
        args = [self.binary, "mount", url, self.mnt, "--api-key-file", self.key_file,
                "--cache-dir", cache_dir, "--rate-limit", "1000000"]
        with open(self.log_path, "a") as logf:
            self.proc = subprocess.Popen(args, stdout=logf, stderr=logf,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: cloudify-fs ended (log: {self.log_path})")
            if time.monotonic() > deadline:
                raise SystemExit("bench: the mount did not appear within 120s")
            time.sleep(0.05)

    def memory_kib(self):
        """(VmHWM, VmRSS) of the mount process in KiB."""
        values = {}
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("VmHWM", "VmRSS"):
                        values[key] = int(rest.split()[0])
        except (OSError, AttributeError):
            pass
        return values.get("VmHWM"), values.get("VmRSS")

    def stop(self):
        if is_mounted(self.mnt):
            if subprocess.run(["fusermount3", "-u", self.mnt],
                              stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                stop_process(self.proc, "cloudify-fs")
        self.proc = None


# --- the server's API, for setting up and for counting ---------------------------------------


class Api:
    def __init__(self, url, key):
        self.url = url.rstrip("/")
        self.key = key

    def call(self, method, path, query=None, form=None):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("X-API-KEY", self.key)
        req.add_header("Accept", "application/json")
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read() or b"null")

    def page_query(self, folder_id, page):
        q = {"include_files": "true", "per_page": PER_PAGE, "page": page}
        if folder_id:
            q["folder_id"] = folder_id
        return q

    def listing(self, folder_id=None):
        folders, files, page = [], [], 1
        while True:
            data = self.call("GET", "/api/v1/media/folders", self.page_query(folder_id, page))
            data = data["data"]
            folders += data["folders"]
            files += data["files"]
            if len(data["folders"]) + len(data["files"]) < PER_PAGE:
                return folders, files, page
            page += 1

    def folder_id(self, name, parent=None):
        for f in self.listing(parent)[0]:
            if f["name"] == name:
                return f["id"]
        raise SystemExit(f"bench: folder {name} is missing on the server")

    def page_urls(self, folder_id, pages):
        base = self.url + "/api/v1/media/folders?"
        return [base + urllib.parse.urlencode(self.page_query(folder_id, p))
                for p in range(1, pages + 1)]

    def create_folder(self, name, parent=None):
        form = {"name": name}
        if parent:
            form["parent_id"] = parent
        return self.call("POST", "/api/v1/media/folders", form=form)["data"]

    def delete_folder(self, folder_id):
        self.call("DELETE", f"/api/v1/media/folders/{folder_id}")

    def stats(self):
        with urllib.request.urlopen(self.url + "/_server/stats", timeout=60) as r:
            s = json.loads(r.read())
        return {
            "api": s["api"]["total"],
            "list": s["api"]["list_folders"] + s["api"]["list_files"],
            "upload": s["api"]["upload"],
            "get": s["storage"]["get"],
            "head": s["storage"]["head"],
            "bytes": s["storage"]["bytes_sent"],
        }

    def reset_stats(self):
        req = urllib.request.Request(self.url + "/_server/stats/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=60).read()


# --- measuring ------------------------------------------------------------------------------


def run(cmd, **kw):
    kw.setdefault("stdout", subprocess.DEVNULL)
    subprocess.run(cmd, check=True, **kw)


def timed(api, fn):
    """(seconds, request counts) of fn()."""
    api.reset_stats()
    t = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t
    return seconds, api.stats()


class Bench:
    def __init__(self, args):
        self.args = args
        self.sizes = Sizes(args.quick)
        self.base = os.path.join(args.data_dir, self.sizes.name)
        os.makedirs(self.base, exist_ok=True)
        self.logs = os.path.join(self.base, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.key_file = os.path.join(args.data_dir, "key")
        self.headers_file = os.path.join(args.data_dir, "curl-headers")
        self.cache = os.path.join(self.base, "cache")
        self.work = os.path.join(self.base, "work")
        self.mnt = os.path.join(self.base, "mnt")
        self.server = Server(os.path.join(args.bin_dir, "cloudify-server"),
                             os.path.join(self.base, "server"), self.key_file,
                             os.path.join(self.logs, "server.log"))
        self.mount = Mount(os.path.join(args.bin_dir, "cloudify-fs"), self.mnt,
                           self.key_file, os.path.join(self.logs, "mount.log"))
        self.results = []
        self.env = None
        self.writes_available = None

    # -- setup

    def make_key(self):
        if not os.path.exists(self.key_file):
            old = os.umask(0o077)
            with open(self.key_file, "w") as f:
                f.write(os.urandom(20).hex().upper() + "\n")
            os.umask(old)
        with open(self.key_file) as f:
            self.key = f.read().strip()
        old = os.umask(0o077)
        with open(self.headers_file, "w") as f:
            f.write(f"X-API-KEY: {self.key}\nAccept: application/json\n")
        os.umask(old)

    def start_server(self, env):
        data = self.server.data
        imported = os.path.join(data, ".imported")
        tree = None
        if not os.path.exists(imported):
            shutil.rmtree(data, ignore_errors=True)
            tree = self.src
            log("==> importing the data set into cloudify-server (first run only)")
        t = time.perf_counter()
        self.server.start(DISTANT if env == "distant" else [], tree)
        if tree:
            open(imported, "w").close()
            log(f"    imported in {time.perf_counter() - t:.0f}s")
        self.api = Api(self.server.url, self.key)
        self.env = env
        log(f"==> {env}: cloudify-server at {self.server.url}"
            + (" (" + " ".join(DISTANT) + ")" if env == "distant" else ""))

    def discover(self):
        """Folder ids and file URLs the curl side uses."""
        root_folders = {f["name"]: f["id"] for f in self.api.listing()[0]}
        self.ids = root_folders
        _, files, _ = self.api.listing(root_folders["big"])
        self.big_url = files[0]["full_url"]
        self.big_size = os.path.getsize(os.path.join(self.src, "big", "big.zip"))
        _, files, self.many_pages = self.api.listing(root_folders["many"])
        self.many_urls = [f["full_url"] for f in files]
        tree_folders, _, self.tree_pages = self.api.listing(root_folders["tree"])
        self.tree_ids = [f["id"] for f in tree_folders]

    def fresh_mount(self, keep_cache=False, look_up=None):
        """A new mount; `look_up` (a path in it) is looked up before any measurement, so
        that the listing of its parent is not counted against the folder measured."""
        self.mount.stop()
        if not keep_cache:
            shutil.rmtree(self.cache, ignore_errors=True)
        self.mount.start(self.server.url, self.cache)
        if look_up:
            os.stat(look_up)

    def record(self, case, name, mount, curl=None, **extra):
        row = {"env": self.env, "size": self.sizes.name, "case": case, "name": name,
               "mount": mount, "curl": curl}
        row.update(extra)
        self.results.append(row)
        report.print_row(row)

    def side(self, seconds, counts, **extra):
        d = {"seconds": round(seconds, 4), "requests": counts}
        d.update(extra)
        return d

    def curl_config(self, name, entries):
        """A curl config file: one `url`/`output` (and options) block per entry, `next`
        between them, so one curl process reuses its connection for all of them."""
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            for i, (url, opts) in enumerate(entries):
                if i:
                    f.write("next\n")
                f.write(f'url = "{url}"\noutput = "/dev/null"\nsilent\nfail\n')
                for o in opts:
                    f.write(o + "\n")
        return path

    def curl_pages_and_heads(self, page_urls, file_urls):
        pages = self.curl_config("pages.cfg", [(u, ['header = "@%s"' % self.headers_file])
                                              for u in page_urls])
        run(["curl", "-K", pages])
        if file_urls:
            heads = self.curl_config("heads.cfg", [(u, ["head"]) for u in file_urls])
            # curl 7.88 shows the parallel progress meter despite -s.
            run(["curl", "-s", "--no-progress-meter", "--parallel", "--parallel-max", "16",
                 "-K", heads])

    # -- the cases

    def case1(self):
        size = self.big_size
        curl_s, curl_n = timed(self.api, lambda: run(["curl", "-sf", "-o", "/dev/null",
                                                      self.big_url]))
        self.fresh_mount(keep_cache=True)
        path = os.path.join(self.mnt, "big", "big.zip")
        os.stat(path)
        mount_s, mount_n = timed(self.api, lambda: run(["cat", path]))
        hwm, rss = self.mount.memory_kib()
        self.record("1", f"sequential read {size // MiB} MiB (cat vs curl)",
                    self.side(mount_s, mount_n, mib_s=round(size / MiB / mount_s, 1),
                              rss_peak_kib=hwm),
                    self.side(curl_s, curl_n, mib_s=round(size / MiB / curl_s, 1)))
        if self.args.verify:
            log("    verifying the bytes read through the mount (cmp)")
            run(["cmp", path, os.path.join(self.src, "big", "big.zip")])

    def case2(self):
        n = self.sizes.random_reads
        rng = random.Random(6)
        offsets = [rng.randrange(self.big_size // 4096) * 4096 for _ in range(n)]
        cfg = self.curl_config("random.cfg", [(self.big_url, [f'range = "{o}-{o + 4095}"'])
                                              for o in offsets])
        curl_s, curl_n = timed(self.api, lambda: run(["curl", "-K", cfg]))
        self.fresh_mount(keep_cache=True)
        path = os.path.join(self.mnt, "big", "big.zip")
        os.stat(path)
        offsets_file = os.path.join(self.work, "offsets.txt")
        with open(offsets_file, "w") as f:
            f.write("\n".join(map(str, offsets)) + "\n")
        reader = os.path.join(os.path.dirname(os.path.abspath(__file__)), "randread.py")
        verify = [os.path.join(self.src, "big", "big.zip")] if self.args.verify else []
        mount_s, mount_n = timed(self.api, lambda: run(
            [sys.executable, reader, path, offsets_file] + verify))
        self.record("2", f"{n} random 4 KiB reads (pread vs curl ranges, keep-alive)",
                    self.side(mount_s, mount_n), self.side(curl_s, curl_n))

    def case3(self):
        many = os.path.join(self.mnt, "many")
        n = self.sizes.many
        page_urls = self.api.page_urls(self.ids["many"], self.many_pages)
        pages_s, pages_n = timed(self.api, lambda: self.curl_pages_and_heads(page_urls, []))
        full_s, full_n = timed(self.api, lambda: self.curl_pages_and_heads(
            page_urls, self.many_urls))

        self.fresh_mount(look_up=many)
        s, c = timed(self.api, lambda: run(["ls", "-f", many]))
        hwm, _ = self.mount.memory_kib()
        self.record("3a", f"ls -f of {n} files, cold (vs curl pages)",
                    self.side(s, c, rss_peak_kib=hwm), self.side(pages_s, pages_n),
                    pages=self.many_pages)

        self.fresh_mount(look_up=many)
        cold_s, c = timed(self.api, lambda: run(["ls", "-l", many]))
        hwm, _ = self.mount.memory_kib()
        self.record("3b", f"ls -l of {n} files, cold (vs curl pages + HEADs x16)",
                    self.side(cold_s, c, rss_peak_kib=hwm), self.side(full_s, full_n))

        self.fresh_mount(keep_cache=True, look_up=many)
        s, c = timed(self.api, lambda: run(["ls", "-l", many]))
        self.record("3c", f"ls -l of {n} files after a remount (size cache)",
                    self.side(s, c), self.side(pages_s, pages_n))

        s, c = timed(self.api, lambda: run(["ls", "-l", many]))
        self.record("3d", f"ls -l of {n} files, warm", self.side(s, c), None,
                    cold_seconds=round(cold_s, 4))

    def probe_writes(self, folder_name):
        path = os.path.join(self.mnt, folder_name, "probe.txt")
        try:
            with open(path, "w") as f:
                f.write("probe\n")
        except OSError as e:
            log(f"    writing through the mount: {os.strerror(e.errno)}")
            return False
        try:
            os.remove(path)
        except OSError:
            pass
        return True

    def write_case(self, case, name, mount_fn, curl_fn):
        stamp = time.strftime("%H%M%S")
        mount_dir = self.api.create_folder(f"bench mount {case} {stamp}")
        curl_dir = self.api.create_folder(f"bench curl {case} {stamp}")
        try:
            self.fresh_mount(keep_cache=True)
            if self.writes_available is None or self.writes_available:
                self.writes_available = self.probe_writes(mount_dir["name"])
            if not self.writes_available:
                self.record(case, name, None, None, note="not available (writes refused)")
                return
            curl_s, curl_n = timed(self.api, lambda: curl_fn(curl_dir["id"]))
            mount_s, mount_n = timed(self.api, lambda: mount_fn(
                os.path.join(self.mnt, mount_dir["name"])))
            self.record(case, name, self.side(mount_s, mount_n), self.side(curl_s, curl_n))
        finally:
            self.mount.stop()
            for d in (mount_dir, curl_dir):
                self.api.delete_folder(d["id"])

    def upload_cmd(self, folder_id, path):
        return ["curl", "-sf", "-o", "/dev/null", "-H", "@" + self.headers_file,
                "-F", f"file=@{path}", "-F", f"folder_id={folder_id}",
                self.server.url + "/api/v1/media/files"]

    def case4(self):
        big = os.path.join(self.src, "big", "big.zip")
        self.write_case(
            "4", f"write {self.big_size // MiB} MiB (cp vs curl -F upload)",
            lambda d: run(["cp", big, os.path.join(d, "upload.zip")]),
            lambda fid: run(self.upload_cmd(fid, big)))

    def case5(self):
        small = os.path.join(self.upload, "small")
        files = sorted(os.listdir(small))

        def curl_loop(fid):
            for f in files:
                run(self.upload_cmd(fid, os.path.join(small, f)))

        self.write_case("5", f"write {len(files)} files of 4 KiB (cp -r vs curl loop)",
                        lambda d: run(["cp", "-r", small, d]), curl_loop)

    def case6(self):
        tree = os.path.join(self.mnt, "tree")
        folders, files = self.sizes.tree
        pages = [u for fid in self.tree_ids
                 for u in self.api.page_urls(fid, files // PER_PAGE + 1)]
        pages = self.api.page_urls(self.ids["tree"], self.tree_pages) + pages
        curl_s, curl_n = timed(self.api, lambda: self.curl_pages_and_heads(pages, []))
        self.fresh_mount(look_up=tree)
        s, c = timed(self.api, lambda: run(["find", tree]))
        self.record("6a", f"find over {folders} folders of {files} files, cold",
                    self.side(s, c), self.side(curl_s, curl_n), folders=folders + 1)
        self.fresh_mount(look_up=tree)
        s, c = timed(self.api, lambda: run(
            f"find {tree} -type f -print0 | xargs -0 stat >/dev/null", shell=True))
        self.record("6b", f"find | xargs stat over {folders}x{files}, cold",
                    self.side(s, c), self.side(curl_s, curl_n), folders=folders + 1)

    def case7(self):
        folders, files = self.sizes.wide
        self.fresh_mount()
        wide = os.path.join(self.mnt, "wide")
        dirs = sorted(os.listdir(wide))
        s, c = timed(self.api, lambda: [run(["ls", "-f", os.path.join(wide, d)])
                                        for d in dirs])
        hwm, rss = self.mount.memory_kib()
        self.record("7", f"memory after listing {folders * files} entries (ls -f)",
                    self.side(s, c, rss_peak_kib=hwm, rss_kib=rss), None,
                    entries=folders * files)

    # -- the whole run

    def main(self):
        self.src, self.upload = generate(self.base, self.sizes)
        os.makedirs(self.work, exist_ok=True)
        self.make_key()
        cases = self.args.cases
        for env in self.args.env:
            env_cases = [c for c in cases if env == "loopback" or c <= 5]
            if not env_cases:
                continue
            self.start_server(env)
            try:
                self.discover()
                if env == "loopback" and not self.args.no_server_check:
                    self.server_check()
                for c in env_cases:
                    log(f"--- case {c} ({env})")
                    getattr(self, f"case{c}")()
                    self.mount.stop()
            finally:
                self.mount.stop()
                self.server.stop()
        report.finish(self.results, self.args.json, self.command())

    def server_check(self):
        """The server must not be the bottleneck: curl's speed for the big file."""
        s, _ = timed(self.api, lambda: run(["curl", "-sf", "-o", "/dev/null", self.big_url]))
        speed = self.big_size / MiB / s
        log(f"    server check: curl downloads the {self.big_size // MiB} MiB file at "
            f"{speed:.0f} MiB/s on loopback")
        self.results.append({"env": "loopback", "size": self.sizes.name, "case": "0",
                             "name": "server check: curl download", "curl": {
                                 "seconds": round(s, 4), "mib_s": round(speed, 1)}})

    def command(self):
        return "scripts/bench.sh " + " ".join(self.args.raw)


def parse_args():
    p = argparse.ArgumentParser(prog="scripts/bench.sh")
    p.add_argument("--quick", action="store_true",
                   help="smaller data set: 256 MiB file, 2,000-file folder, 20x100 tree, "
                        "20,000 entries for case 7, 200 small files to write")
    p.add_argument("--cases", default="1,2,3,4,5,6,7",
                   help="comma-separated cases to run (default: all)")
    p.add_argument("--env", default="loopback,distant",
                   help="loopback, distant (--latency 20ms --bandwidth 50Mi) or both "
                        "(default); cases 6 and 7 run on loopback only")
    p.add_argument("--verify", action="store_true",
                   help="also compare the bytes read through the mount with the source")
    p.add_argument("--no-server-check", action="store_true",
                   help="skip the curl download that checks the server's speed")
    p.add_argument("--bin-dir", required=True, help=argparse.SUPPRESS)
    p.add_argument("--data-dir", required=True, help=argparse.SUPPRESS)
    p.add_argument("--json", required=True, help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        args.cases = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    except ValueError:
        p.error("--cases takes numbers such as 1,3")
    if not args.cases or any(c < 1 or c > 7 for c in args.cases):
        p.error("cases are 1 to 7")
    args.env = [e.strip() for e in args.env.split(",") if e.strip()]
    if not args.env or any(e not in ("loopback", "distant") for e in args.env):
        p.error("--env takes loopback, distant or both")
    raw, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a in ("--bin-dir", "--data-dir", "--json"):
            skip = True
        elif not a.startswith(("--bin-dir=", "--data-dir=", "--json=")):
            raw.append(a)
    args.raw = raw
    return args


def main():
    args = parse_args()
    bench = Bench(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background of a script, where SIGINT comes ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        bench.main()
    except KeyboardInterrupt:
        log("\nbench: interrupted; unmounting and stopping the server")
        return 130
    except subprocess.CalledProcessError as e:
        log(f"bench: command failed ({e.returncode}): {' '.join(map(str, e.cmd))}")
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.mount.stop()
        bench.server.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        if e.errno == errno.EPIPE:
            sys.exit(1)
        raise
