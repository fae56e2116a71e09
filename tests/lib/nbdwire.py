"""A tiny raw NBD client for tests that must send what no real client would.

Speaks the fixed newstyle handshake (OPT_GO, OPT_ABORT, raw options) and simple replies.
Every receive is bounded by the socket timeout: a server that neither answers nor closes
raises Hang, so a test can tell a hang from a clean close (EOFError).
"""
import socket
import struct

NBDMAGIC = 0x4E42444D41474943          # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054          # "IHAVEOPT"
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_BIT = 1 << 31
INFO_EXPORT = 0

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES = range(7)
CMD_FLAG_FUA, CMD_FLAG_NO_HOLE = 1, 2

ERRNO_NAMES = {0: "OK", 1: "EPERM", 5: "EIO", 12: "ENOMEM", 22: "EINVAL", 28: "ENOSPC",
               75: "EOVERFLOW", 95: "ENOTSUP", 108: "ESHUTDOWN"}


class Hang(Exception):
    """The server neither answered nor closed within the timeout."""


class Conn:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.size = None
        self.flags = None
        self.next_cookie = 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- bytes ------------------------------------------------------------------------
    def send(self, data):
        """sendall; a server that already closed shows up as EOFError."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise EOFError(f"server closed while we sent: {e}") from None
        except socket.timeout:
            raise Hang("server stopped reading (send timed out)") from None

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise Hang(f"no data after {len(buf)}/{n} bytes") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError(f"closed after {len(buf)}/{n} bytes")
            buf += chunk
        return bytes(buf)

    def wait_close(self):
        """Read and discard until EOF. Returns the bytes that came first."""
        got = bytearray()
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Hang(f"connection not closed ({len(got)} bytes received)") from None
            except ConnectionResetError:
                return bytes(got)
            if not chunk:
                return bytes(got)
            got += chunk

    # -- handshake ----------------------------------------------------------------------
    def greeting(self):
        magic, opt, hflags = struct.unpack(">QQH", self.recv_exact(18))
        if magic != NBDMAGIC or opt != IHAVEOPT:
            raise AssertionError(f"bad greeting {magic:#x} {opt:#x}")
        if not hflags & FLAG_FIXED_NEWSTYLE:
            raise AssertionError("server is not fixed-newstyle")
        self.hflags = hflags
        return hflags

    def client_flags(self, flags=None):
        if flags is None:
            flags = FLAG_FIXED_NEWSTYLE | (self.hflags & FLAG_NO_ZEROES)
        self.send(struct.pack(">I", flags))

    def option(self, opt, data=b"", length=None):
        n = len(data) if length is None else length
        self.send(struct.pack(">QII", IHAVEOPT, opt, n) + data)

    def option_reply(self):
        magic, opt, rtype, n = struct.unpack(">QIII", self.recv_exact(20))
        if magic != OPT_REPLY_MAGIC:
            raise AssertionError(f"bad option reply magic {magic:#x}")
        return opt, rtype, self.recv_exact(n)

    def go(self, name=""):
        """Full handshake into transmission on export `name`."""
        self.greeting()
        self.client_flags()
        nm = name.encode()
        self.option(OPT_GO, struct.pack(">I", len(nm)) + nm + struct.pack(">H", 0))
        while True:
            _, rtype, data = self.option_reply()
            if rtype == REP_INFO and len(data) >= 12:
                itype, = struct.unpack(">H", data[:2])
                if itype == INFO_EXPORT:
                    self.size, self.flags = struct.unpack(">QH", data[2:12])
            elif rtype == REP_ACK:
                break
            elif rtype & REP_ERR_BIT:
                raise AssertionError(f"OPT_GO {name!r} refused: reply type {rtype:#x} {data!r}")
        if self.size is None:
            raise AssertionError("OPT_GO acked without INFO_EXPORT")
        return self

    # -- transmission -----------------------------------------------------------------------
    def request(self, cmd, offset=0, length=0, flags=0, payload=b"", magic=REQUEST_MAGIC,
                cookie=None):
        if cookie is None:
            cookie = self.next_cookie
            self.next_cookie += 1
        self.send(struct.pack(">IHHQQI", magic, flags, cmd, cookie, offset, length) + payload)
        return cookie

    def reply(self, read_len=0):
        """One simple reply: (error, cookie, data). data is read only on success."""
        magic, err, cookie = struct.unpack(">IIQ", self.recv_exact(16))
        if magic != SIMPLE_REPLY_MAGIC:
            raise AssertionError(f"bad reply magic {magic:#x}")
        data = self.recv_exact(read_len) if err == 0 and read_len else b""
        return err, cookie, data

    def reply_any(self, read_lens):
        """One simple reply to any outstanding request; read_lens maps cookie -> READ length."""
        magic, err, cookie = struct.unpack(">IIQ", self.recv_exact(16))
        if magic != SIMPLE_REPLY_MAGIC:
            raise AssertionError(f"bad reply magic {magic:#x}")
        if err == 0 and read_lens.get(cookie):
            self.recv_exact(read_lens[cookie])
        return err, cookie

    def read(self, offset, length):
        c = self.request(CMD_READ, offset, length)
        err, cookie, data = self.reply(length)
        if cookie != c:
            raise AssertionError(f"reply cookie {cookie} for request {c}")
        if err:
            raise AssertionError(f"READ {offset}+{length}: error {ERRNO_NAMES.get(err, err)}")
        return data

    def write(self, offset, data, flags=0):
        c = self.request(CMD_WRITE, offset, len(data), flags, data)
        err, cookie, _ = self.reply()
        if cookie != c:
            raise AssertionError(f"reply cookie {cookie} for request {c}")
        if err:
            raise AssertionError(f"WRITE {offset}+{len(data)}: error {ERRNO_NAMES.get(err, err)}")
