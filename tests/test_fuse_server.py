"""fsrace's own FUSE server (stress/fuse_server.py): its answers, byte by byte, without a
kernel; and, with root and /dev/fuse, the file system it serves, made and removed by
scratch_fs, with the writeback cache and with passthrough."""

import ctypes
import errno
import mmap
import os
import struct

import pytest

from fsrace.stress import fuse_server as fs
from fsrace.stress.scratch import ScratchError, scratch_fs

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2


def _init_body(minor=45, flags=0xFFFFFFFF, flags2=0):
    return struct.pack("<IIIII", 7, minor, 131072, flags, flags2) + bytes(44)


def test_init_asks_for_the_writeback_cache_or_for_passthrough_never_both():
    out = fs.Server("/", passthrough=False).init(_init_body(flags2=0xFFFFFFFF))
    assert len(out) == 64
    major, minor, _, flags = struct.unpack_from("<IIII", out)
    flags2, depth = struct.unpack_from("<II", out, 32)
    assert (major, minor) == (7, 45)
    assert flags & fs.WRITEBACK_CACHE and not flags2 & fs.PASSTHROUGH_FLAGS2 and depth == 0

    out = fs.Server("/", passthrough=True).init(_init_body(flags2=fs.PASSTHROUGH_FLAGS2))
    flags, = struct.unpack_from("<I", out, 12)
    flags2, depth = struct.unpack_from("<II", out, 32)
    assert not flags & fs.WRITEBACK_CACHE and flags & fs.INIT_EXT
    assert flags2 & fs.PASSTHROUGH_FLAGS2 and depth == 1


def test_init_never_claims_a_flag_the_kernel_did_not_offer():
    out = fs.Server("/", passthrough=False).init(_init_body(flags=fs.BIG_WRITES))
    assert struct.unpack_from("<I", out, 12)[0] == fs.BIG_WRITES


def test_passthrough_on_a_kernel_without_it_is_refused_with_why():
    with pytest.raises(OSError, match="no FUSE passthrough") as e:
        fs.Server("/", passthrough=True).init(_init_body(flags2=0))
    assert e.value.errno == errno.EOPNOTSUPP


def test_requests_do_the_same_to_the_served_folder(tmp_path):
    server = fs.Server(str(tmp_path), passthrough=False)
    entry_and_open = server.handle(fs.CREATE, 1, struct.pack("<IIII", os.O_WRONLY, 0o644, 0o22,
                                                             0) + b"f\0")
    nodeid = fs.ENTRY_OUT.unpack_from(entry_and_open)[0]
    fh, open_flags, _ = fs.OPEN_OUT.unpack_from(entry_and_open, fs.ENTRY_OUT.size +
                                                fs.ATTR.size)
    assert nodeid != 1 and open_flags == 0
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o644
    # write-only for the caller, readable here: the kernel fills pages from it
    data = bytes(range(256)) * 64
    written = server.handle(fs.WRITE, nodeid, struct.pack("<QQIIQII", fh, 0, len(data), 0, 0,
                                                          0, 0) + data)
    assert struct.unpack("<II", written) == (len(data), 0)
    assert server.handle(fs.READ, nodeid, struct.pack("<QQI", fh, 4096, 8)) == data[4096:4104]
    server.handle(fs.FALLOCATE, nodeid, struct.pack("<QQQI", fh, 4096, 4096,
                                                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
    copied = server.handle(fs.COPY_FILE_RANGE_64, nodeid,
                           struct.pack("<7Q", fh, 0, nodeid, fh, 16384, 4096, 0))
    assert struct.unpack("<Q", copied) == (4096,)
    got = (tmp_path / "f").read_bytes()
    assert got == data[:4096] + bytes(4096) + data[8192:16384] + data[:4096]
    attr = server.handle(fs.SETATTR, nodeid, struct.pack("<IIQQ", fs.FATTR_SIZE | fs.FATTR_FH,
                                                         0, fh, 100) + bytes(88 - 24))
    assert struct.unpack_from("<Q", attr, fs.ATTR_OUT.size + 8)[0] == 100
    looked_up = server.handle(fs.LOOKUP, 1, b"f\0")
    assert fs.ENTRY_OUT.unpack_from(looked_up)[0] == nodeid
    with pytest.raises(FileNotFoundError):
        server.handle(fs.LOOKUP, 1, b"missing\0")
    with pytest.raises(OSError) as e:
        server.handle(999, 1, b"")
    assert e.value.errno == errno.ENOSYS
    server.handle(fs.RELEASE, nodeid, struct.pack("<Q", fh))
    with pytest.raises(OSError):
        os.fstat(fh)  # closed


needs_fuse = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/fuse"),
                                reason="mounting needs root and /dev/fuse")


def _fallocate(fd, mode, offset, length):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    assert libc.fallocate(fd, mode, offset, length) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.realfs
@needs_fuse
@pytest.mark.parametrize("mode", ["fuse", "fuse-passthrough"])
def test_the_served_file_system_keeps_what_is_done_through_it_and_leaves_nothing(mode):
    try:
        with scratch_fs(mode, 64) as s:
            with open("/proc/self/mounts") as f:
                assert f"{s.mnt} fuse.fsrace{mode[4:]} " in f.read()
            path = os.path.join(s.mnt, "f")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, b"a" * 65536, 0)
            m = mmap.mmap(fd, 65536)
            m[8192:8197] = b"store"  # through the mapping
            m.flush()
            m.close()
            _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16384, 8192)
            assert os.copy_file_range(fd, fd, 4096, 8192, 32768) == 4096
            os.fsync(fd)
            os.close(fd)
            want = (b"a" * 8192 + b"store" + b"a" * (8192 - 5) + bytes(8192) + b"a" * 8192
                    + b"store" + b"a" * (4096 - 5) + b"a" * 28672)
            with open(os.path.join(s.backing, "f"), "rb") as f:
                assert f.read() == want  # the served folder holds it
            assert s.remount()  # the server stopped and started again
            with open(path, "rb") as f:
                assert f.read() == want
            root, server = s.root, s.server
    except ScratchError as e:
        if "no FUSE passthrough" in str(e):
            pytest.skip(f"this kernel has no FUSE passthrough: {e}")
        raise
    assert not os.path.exists(root) and server.returncode == 0  # it ended at the unmount
    with open("/proc/self/mounts") as f:
        assert root not in f.read()


@pytest.mark.realfs
@needs_fuse
def test_fstests_mount_helper_serves_a_folder_as_plain_fuse_under_a_name(tmp_path):
    """fstests/mount.fuse.fsrace, run as mount(8) runs it: fstests checks that the mount's
    type is fuse and its source TEST_DEV, a name; the folder comes as source=."""
    import subprocess
    import time
    from pathlib import Path

    helper = Path(__file__).parents[1] / "fstests" / "mount.fuse.fsrace"
    folder, mnt = tmp_path / "folder", tmp_path / "mnt"
    folder.mkdir()
    mnt.mkdir()
    env = {**os.environ, "FSRACE_FUSE_SERVER": fs.__file__}
    r = subprocess.run([str(helper), "fsrace-test", str(mnt), "-o", f"rw,source={folder}"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        with open("/proc/self/mounts") as f:
            assert f"fsrace-test {mnt} fuse " in f.read()
        (mnt / "f").write_bytes(b"through FUSE")
        assert (folder / "f").read_bytes() == b"through FUSE"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    for _ in range(100):  # the server ends at the unmount
        if subprocess.run(["pgrep", "-f", f"fuse_server.py {folder} "],
                          capture_output=True).returncode:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not end at the unmount")
    r = subprocess.run([str(helper), str(tmp_path / "absent"), str(mnt)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 32 and "the server did not start" in r.stderr
