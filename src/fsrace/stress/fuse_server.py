"""fsrace's own FUSE server: a folder served through the kernel's FUSE protocol, so the
stress runs can race mapped stores against punches, truncates and copies on a FUSE file
system. Standard library only (it runs in the guest as a lone file):

    python3 fuse_server.py BACKING MOUNTPOINT [--passthrough] [--ready FILE]
                           [--delay OP=MS ...] [--fuse NAME]

It speaks the protocol of include/uapi/linux/fuse.h on /dev/fuse itself, one request at a
time. Two modes, the two a FUSE file system chooses between for cached I/O:

- writeback cache (the default): FUSE_WRITEBACK_CACHE at FUSE_INIT. The kernel keeps
  dirty pages and sends FUSE_WRITE when it writes them back; a store through a mapping
  faults into fuse_page_mkwrite, and a punch or a copy goes to this server as
  FUSE_FALLOCATE or FUSE_COPY_FILE_RANGE, bracketed in the kernel by a writeback of the
  range and a truncate of its page cache (fuse_file_fallocate, fuse_copy_file_range).
- passthrough (FUSE_PASSTHROUGH, kernels from 6.9): every open file is registered as a
  backing file (FUSE_DEV_IOC_BACKING_OPEN) and opened with FOPEN_PASSTHROUGH, so reads,
  writes and mappings go to the backing file system's file; the other operations still
  come here.

The mount's type is fuse.fsrace, or fuse.fsrace-passthrough (--subtype ''
gives plain fuse, the type fstests checks for; --source the mount's source, which fstests
compares with its TEST_DEV: fstests/mount.fuse.fsrace gives both). With --ready the server
makes FILE once the kernel has accepted its FUSE_INIT answer: the file system is usable.

--fuse names the kernel's FUSE: its device /dev/NAME and file system type NAME (fuse; a
renamed build of fs/fuse loaded beside a built-in one, to test a change to it).

--delay answers requests of one kind (fallocate, copy, setattr) that many milliseconds
late, as a server across a network would: the kernel's window between its writeback and
its truncate of the page cache widens, for reproducers; the stress runs never use it.

The server answers every request by doing the same to the folder's file: FUSE_FALLOCATE
by fallocate(2) with the same mode, FUSE_COPY_FILE_RANGE by copy_file_range(2), so what
the backing file system does is what the client sees. It exits when the file system is
unmounted (reading /dev/fuse then fails with ENODEV).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import stat
import struct
import sys
import time
import traceback

# Opcodes (enum fuse_opcode).
LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
MKNOD, MKDIR, UNLINK, RMDIR, RENAME = 8, 9, 10, 11, 12
OPEN, READ, WRITE, STATFS, RELEASE, FSYNC = 14, 15, 16, 17, 18, 20
FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR = 25, 26, 27, 28, 29, 30
ACCESS, CREATE, INTERRUPT, DESTROY, BATCH_FORGET = 34, 35, 36, 38, 42
FALLOCATE, RENAME2, LSEEK, COPY_FILE_RANGE, COPY_FILE_RANGE_64 = 43, 45, 46, 47, 53
NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}
DELAYABLE = {"fallocate": {FALLOCATE}, "copy": {COPY_FILE_RANGE, COPY_FILE_RANGE_64},
             "setattr": {SETATTR}}

# FUSE_INIT flags.
ASYNC_READ, ATOMIC_O_TRUNC, BIG_WRITES = 1 << 0, 1 << 3, 1 << 5
WRITEBACK_CACHE, MAX_PAGES, INIT_EXT = 1 << 16, 1 << 22, 1 << 30
PASSTHROUGH_FLAGS2 = 1 << (37 - 32)  # FUSE_PASSTHROUGH, a bit of flags2
FOPEN_PASSTHROUGH = 1 << 7
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1, 2, 4, 8
FATTR_ATIME, FATTR_MTIME, FATTR_FH = 16, 32, 64
# _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t)
BACKING_OPEN, BACKING_CLOSE = 0x4010E501, 0x4004E502

IN_HEADER = struct.Struct("<IIQQIIIHH")  # len, opcode, unique, nodeid, uid, gid, pid, ...
OUT_HEADER = struct.Struct("<IiQ")  # len, error, unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # struct fuse_attr
ENTRY_OUT = struct.Struct("<QQQQII")  # nodeid, generation, entry/attr valid (+ nsec)
ATTR_OUT = struct.Struct("<QII")  # attr_valid, attr_valid_nsec, dummy
OPEN_OUT = struct.Struct("<QIi")  # fh, open_flags, backing_id
MAX_WRITE = 128 << 10
BUFFER = MAX_WRITE + (64 << 10)
VALID_S = 1  # how long the kernel may trust a name or attributes (libfuse's default)

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2


class Server:
    def __init__(self, backing: str, passthrough: bool, ready: str | None = None,
                 delays: dict[int, float] | None = None, fuse: str = "fuse") -> None:
        self.passthrough = passthrough
        self.ready = ready
        self.delays = delays or {}  # opcode -> seconds to wait before doing it
        self.fuse = fuse
        self.mountpoint = ""
        self.paths = {1: os.path.realpath(backing)}  # nodeid -> path in the folder
        self.nodeids: dict[int, int] = {}  # backing inode number -> nodeid
        self.backing: dict[int, tuple[int, int]] = {}  # nodeid -> backing id, open files
        self.open_nodeid: dict[int, int] = {}  # fh (our fd) -> its nodeid (passthrough)
        self.dev = -1

    # --- replies -----------------------------------------------------------------------
    def reply(self, unique: int, payload: bytes = b"", error: int = 0) -> None:
        out = OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload
        try:
            os.write(self.dev, out)
        except OSError as e:
            if e.errno != errno.ENOENT:  # ENOENT: the request was interrupted meanwhile
                raise

    @staticmethod
    def attr(st: os.stat_result, nodeid: int) -> bytes:
        return ATTR.pack(nodeid, st.st_size, st.st_blocks, int(st.st_atime),
                         int(st.st_mtime), int(st.st_ctime), st.st_atime_ns % 10**9,
                         st.st_mtime_ns % 10**9, st.st_ctime_ns % 10**9, st.st_mode,
                         st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, st.st_blksize, 0)

    def entry(self, path: str) -> bytes:
        st = os.lstat(path)
        nodeid = self.nodeids.get(st.st_ino)
        if nodeid is None or self.paths.get(nodeid) is None:
            nodeid = max(self.paths) + 1
            self.nodeids[st.st_ino] = nodeid
        self.paths[nodeid] = path
        return ENTRY_OUT.pack(nodeid, 0, VALID_S, VALID_S, 0, 0) + self.attr(st, nodeid)

    def attr_out(self, st: os.stat_result, nodeid: int) -> bytes:
        return ATTR_OUT.pack(VALID_S, 0, 0) + self.attr(st, nodeid)

    def opened(self, fd: int, nodeid: int) -> bytes:
        if not self.passthrough:
            return OPEN_OUT.pack(fd, 0, 0)
        # One backing file per inode while any of its files is open: the kernel refuses an
        # open whose backing file differs from the inode's (fuse_inode_uncached_io_start).
        backing_id, users = self.backing.get(nodeid, (None, 0))
        if backing_id is None:
            # A mutable buffer: ioctl returns the call's value, the new backing id.
            backing_id = fcntl.ioctl(self.dev, BACKING_OPEN,
                                     bytearray(struct.pack("<iIQ", fd, 0, 0)), True)
        self.backing[nodeid] = (backing_id, users + 1)
        self.open_nodeid[fd] = nodeid
        return OPEN_OUT.pack(fd, FOPEN_PASSTHROUGH, backing_id)

    def released(self, fd: int) -> None:
        nodeid = self.open_nodeid.pop(fd, None)
        if nodeid is not None:
            backing_id, users = self.backing.pop(nodeid)
            if users > 1:
                self.backing[nodeid] = (backing_id, users - 1)
            else:
                fcntl.ioctl(self.dev, BACKING_CLOSE, struct.pack("<i", backing_id))
        os.close(fd)

    def open_flags(self, flags: int) -> int:
        # The kernel reads pages of a write-only file to fill them (writeback cache), and
        # direct I/O is the kernel's business here, not the backing file's.
        flags &= ~(os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_DIRECT)
        if not self.passthrough and flags & os.O_ACCMODE == os.O_WRONLY:
            flags = flags & ~os.O_ACCMODE | os.O_RDWR
        if not self.passthrough:
            flags &= ~os.O_APPEND  # the kernel places appends itself
        return flags

    # --- requests ----------------------------------------------------------------------
    def init(self, body: bytes) -> bytes:
        major, minor, max_readahead, flags, flags2 = struct.unpack_from("<IIIII", body)
        if major != 7:
            raise OSError(errno.EPROTO, f"FUSE protocol {major}.{minor}")
        want = ASYNC_READ | ATOMIC_O_TRUNC | BIG_WRITES | MAX_PAGES | INIT_EXT
        want2 = 0
        if self.passthrough:
            if not flags2 & PASSTHROUGH_FLAGS2:
                raise OSError(errno.EOPNOTSUPP, "this kernel has no FUSE passthrough")
            want2 |= PASSTHROUGH_FLAGS2
        else:
            want |= WRITEBACK_CACHE
        out = struct.pack("<IIIIHHIIHHIIH", 7, min(minor, 46), max_readahead, flags & want,
                          16, 12, MAX_WRITE, 1, MAX_WRITE // 4096, 0, flags2 & want2,
                          1 if self.passthrough else 0, 0)
        return out + bytes(64 - len(out))

    def handle(self, opcode: int, nodeid: int, body: bytes) -> bytes:
        path = self.paths.get(nodeid, "")
        if opcode in self.delays:
            time.sleep(self.delays[opcode])
        if opcode == LOOKUP:
            return self.entry(os.path.join(path, body.rstrip(b"\0").decode()))
        if opcode == GETATTR:
            flags, _, fh = struct.unpack_from("<IIQ", body)
            st = os.fstat(fh) if flags & 1 else os.lstat(path)  # FUSE_GETATTR_FH
            return self.attr_out(st, nodeid)
        if opcode == SETATTR:
            return self.setattr(path, nodeid, body)
        if opcode in (OPEN, OPENDIR):
            if opcode == OPENDIR:
                return OPEN_OUT.pack(0, 0, 0)
            (flags,) = struct.unpack_from("<I", body)
            return self.opened(os.open(path, self.open_flags(flags)), nodeid)
        if opcode == CREATE:
            flags, mode, umask, _ = struct.unpack_from("<IIII", body)
            name = body[16:].split(b"\0", 1)[0].decode()
            child = os.path.join(path, name)
            fd = os.open(child, self.open_flags(flags) | os.O_CREAT, mode & ~umask)
            entry = self.entry(child)
            return entry + self.opened(fd, ENTRY_OUT.unpack_from(entry)[0])
        if opcode == READ:
            fh, offset, size = struct.unpack_from("<QQI", body)
            return os.pread(fh, size, offset)
        if opcode == WRITE:
            fh, offset, size = struct.unpack_from("<QQI", body)
            written = os.pwrite(fh, body[40:40 + size], offset)
            return struct.pack("<II", written, 0)
        if opcode == RELEASE:
            self.released(struct.unpack_from("<Q", body)[0])
            return b""
        if opcode in (FLUSH, RELEASEDIR, ACCESS, FSYNCDIR):
            return b""
        if opcode == FSYNC:
            fh, flags = struct.unpack_from("<QI", body)
            (os.fdatasync if flags & 1 else os.fsync)(fh)
            return b""
        if opcode == FALLOCATE:
            fh, offset, length, mode = struct.unpack_from("<QQQI", body)
            if libc.fallocate(fh, mode, offset, length) != 0:
                raise OSError(ctypes.get_errno(), "fallocate")
            return b""
        if opcode in (COPY_FILE_RANGE, COPY_FILE_RANGE_64):
            fh_in, off_in, _, fh_out, off_out, length, flags = struct.unpack_from("<7Q", body)
            n = os.copy_file_range(fh_in, fh_out, length, off_in, off_out)
            return struct.pack("<Q", n) if opcode == COPY_FILE_RANGE_64 else \
                struct.pack("<II", n, 0)
        if opcode == LSEEK:
            fh, offset, whence = struct.unpack_from("<QQI", body)
            return struct.pack("<Q", os.lseek(fh, offset, whence))
        if opcode == READDIR:
            fh, offset, size = struct.unpack_from("<QQI", body)
            return self.readdir(path, offset, size)
        if opcode == STATFS:
            s = os.statvfs(path)
            return struct.pack("<QQQQQIIII24x", s.f_blocks, s.f_bfree, s.f_bavail, s.f_files,
                               s.f_ffree, s.f_bsize, s.f_namemax, s.f_frsize, 0)
        if opcode in (MKDIR, MKNOD):
            mode, *_ = struct.unpack_from("<I", body)
            skip = 8 if opcode == MKDIR else 16
            child = os.path.join(path, body[skip:].split(b"\0", 1)[0].decode())
            if opcode == MKDIR:
                os.mkdir(child, mode & 0o7777)
            else:
                os.mknod(child, mode, struct.unpack_from("<I", body, 4)[0])
            return self.entry(child)
        if opcode in (UNLINK, RMDIR):
            child = os.path.join(path, body.rstrip(b"\0").decode())
            (os.unlink if opcode == UNLINK else os.rmdir)(child)
            return b""
        if opcode in (RENAME, RENAME2):
            (newdir,) = struct.unpack_from("<Q", body)
            skip = 8 if opcode == RENAME else 16
            if opcode == RENAME2 and struct.unpack_from("<I", body, 8)[0]:
                raise OSError(errno.EINVAL, "rename flags")
            old, new = body[skip:].split(b"\0")[:2]
            os.rename(os.path.join(path, old.decode()),
                      os.path.join(self.paths[newdir], new.decode()))
            return b""
        raise OSError(errno.ENOSYS, f"opcode {opcode}")

    def setattr(self, path: str, nodeid: int, body: bytes) -> bytes:
        valid, _, fh, size = struct.unpack_from("<IIQQ", body)
        atime, mtime = struct.unpack_from("<QQ", body, 32)
        atime_ns, mtime_ns = struct.unpack_from("<II", body, 56)
        mode, _, uid, gid = struct.unpack_from("<IIII", body, 68)
        target: int | str = fh if valid & FATTR_FH else path
        if valid & FATTR_SIZE:
            os.truncate(target, size)
        if valid & FATTR_MODE:
            os.chmod(target, stat.S_IMODE(mode))
        if valid & (FATTR_UID | FATTR_GID):
            os.chown(target, uid if valid & FATTR_UID else -1, gid if valid & FATTR_GID else -1)
        if valid & (FATTR_ATIME | FATTR_MTIME):
            st = os.stat(target)
            os.utime(target, ns=(atime * 10**9 + atime_ns if valid & FATTR_ATIME
                                 else st.st_atime_ns,
                                 mtime * 10**9 + mtime_ns if valid & FATTR_MTIME
                                 else st.st_mtime_ns))
        return self.attr_out(os.stat(target), nodeid)

    def readdir(self, path: str, offset: int, size: int) -> bytes:
        out = b""
        names = [".", "..", *sorted(os.listdir(path))]
        for i, name in enumerate(names[offset:], offset + 1):
            raw = name.encode()
            st = os.lstat(os.path.join(path, name))
            rec = struct.pack("<QQII", st.st_ino, i, len(raw), stat.S_IFMT(st.st_mode) >> 12)
            rec += raw + bytes(-(len(rec) + len(raw)) % 8)
            if len(out) + len(rec) > size:
                break
            out += rec
        return out

    # --- the loop ----------------------------------------------------------------------
    def mount(self, mountpoint: str, source: str = "fsrace", subtype: str = "fsrace") -> None:
        self.dev = os.open(f"/dev/{self.fuse}", os.O_RDWR)
        self.mountpoint = mountpoint
        mode = stat.S_IFMT(os.stat(self.paths[1]).st_mode)
        opts = f"fd={self.dev},rootmode={mode:o},user_id=0,group_id=0,allow_other"
        if subtype:
            subtype += "-passthrough" if self.passthrough else ""
        fstype = f"{self.fuse}.{subtype}" if subtype else self.fuse
        if libc.mount(source.encode(), mountpoint.encode(), fstype.encode(), MS_NOSUID | MS_NODEV,
                      opts.encode()) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"mount {mountpoint}: {os.strerror(e)}")

    def serve(self) -> int:
        while True:
            try:
                request = os.read(self.dev, BUFFER)
            except OSError as e:
                if e.errno == errno.ENODEV:  # unmounted
                    return 0
                if e.errno in (errno.EINTR, errno.ENOENT, errno.EAGAIN):
                    continue
                raise
            _, opcode, unique, nodeid, *_ = IN_HEADER.unpack_from(request)
            body = request[IN_HEADER.size:]
            if opcode in NO_REPLY:
                continue
            try:
                payload = self.init(body) if opcode == INIT else self.handle(opcode, nodeid,
                                                                            body)
            except OSError as e:
                self.reply(unique, error=e.errno or errno.EIO)
                if opcode == INIT:  # the connection is dead: take the mount away
                    print(f"fsrace fuse server: {e.strerror}", file=sys.stderr)
                    libc.umount2(self.mountpoint.encode(), MNT_DETACH)
                    return 1
                continue
            except Exception:  # a request this server gets wrong fails, not the mount
                traceback.print_exc()
                self.reply(unique, error=errno.EIO)
                continue
            self.reply(unique, payload)
            if opcode == INIT and self.ready:
                open(self.ready, "w").close()
            if opcode == DESTROY:
                return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("backing", help="the folder served")
    ap.add_argument("mountpoint")
    ap.add_argument("--passthrough", action="store_true",
                    help="FUSE passthrough instead of the writeback cache")
    ap.add_argument("--ready", metavar="FILE", help="made once the file system is usable")
    ap.add_argument("--fuse", default="fuse", metavar="NAME",
                    help="the kernel's FUSE: /dev/NAME, file system type NAME")
    ap.add_argument("--source", default="fsrace", metavar="NAME",
                    help="the mount's source, as mount(8) shows it (fstests' TEST_DEV)")
    ap.add_argument("--subtype", default="fsrace", metavar="NAME",
                    help="the type's part after the dot ('': plain fuse)")
    ap.add_argument("--delay", action="append", default=[], metavar="OP=MS",
                    help=f"answer OP ({', '.join(DELAYABLE)}) MS milliseconds late")
    args = ap.parse_args(argv)
    delays = {}
    for item in args.delay:
        op, _, ms = item.partition("=")
        try:
            delays.update(dict.fromkeys(DELAYABLE[op], float(ms) / 1000))
        except (KeyError, ValueError):
            ap.error(f"--delay {item}: give OP=MS, OP one of {', '.join(DELAYABLE)}")
    server = Server(args.backing, args.passthrough, args.ready, delays, args.fuse)
    try:
        server.mount(args.mountpoint, args.source, args.subtype)
    except OSError as e:
        print(f"fsrace fuse server: {e.strerror}", file=sys.stderr)
        return 1
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
