package redirect

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// LazyDeadlineListener wraps a TCP listener so that the read and write
// deadlines fasthttp sets on each connection reach the socket only when an
// operation is about to wait, and only when the socket's own deadline would
// fire later than the one asked for.
//
// fasthttp sets three deadlines per keep-alive request (idle, read, write),
// each a runtime timer change: 4 to 7% of the proxy's CPU under load
// (bench/results/profiles-23). Most reads and writes of a busy connection
// never wait, and a deadline that never waits never fires. The limits hold
// as before: an operation that waits does so under a socket deadline no
// later than the one asked for; one that is earlier, left from before,
// fires, is checked against the deadline asked for, and is moved to it.
// So a slow client is cut off at the same ReadTimeout, and an idle
// connection closed at the same IdleTimeout.
//
// Connections that are not *net.TCPConn (the PROXY protocol's) are passed
// through untouched.
func LazyDeadlineListener(ln net.Listener) net.Listener { return lazyListener{ln} }

type lazyListener struct{ net.Listener }

func (l lazyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	lc := &lazyConn{TCPConn: tc, rc: rc}
	lc.readFn, lc.writeFn = lc.tryRead, lc.tryWrite
	return lc, nil
}

// lazyConn is a TCP connection whose deadlines are set on the socket only
// before an operation waits. Like a net.Conn, it is read by one goroutine
// and written by one at a time (fasthttp's connection goroutine does both).
type lazyConn struct {
	*net.TCPConn
	rc syscall.RawConn
	// rd and wd are the deadlines asked for; rdSet and wdSet those on the
	// socket (zero: none).
	rd, wd, rdSet, wdSet time.Time
	// The operation in progress, for tryRead and tryWrite, which are
	// made once per connection so a call does not allocate a closure.
	rbuf, wbuf      []byte
	rn, wn          int
	rerr, werr      error
	readFn, writeFn func(fd uintptr) bool
}

func (c *lazyConn) SetDeadline(t time.Time) error      { c.rd, c.wd = t, t; return nil }
func (c *lazyConn) SetReadDeadline(t time.Time) error  { c.rd = t; return nil }
func (c *lazyConn) SetWriteDeadline(t time.Time) error { c.wd = t; return nil }

// later reports whether the socket's deadline set fires after the one
// asked for, want (zero: never).
func later(set, want time.Time) bool {
	if want.IsZero() {
		return false
	}
	return set.IsZero() || set.After(want)
}

func (c *lazyConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	defer func() { c.rbuf = nil }()
	for {
		err := c.rc.Read(c.readFn)
		if err == nil {
			return c.rn, c.rerr
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !c.early(c.rd) {
			return 0, c.opError("read", err)
		}
		// The socket's deadline was left from before and earlier than
		// the one asked for: move it and read on.
		if err := c.TCPConn.SetReadDeadline(c.rd); err != nil {
			return 0, err
		}
		c.rdSet = c.rd
	}
}

// tryRead reads once; on EAGAIN it makes sure the socket's deadline is no
// later than the one asked for and has the runtime wait.
func (c *lazyConn) tryRead(fd uintptr) bool {
	for {
		n, err := rawIO(syscall.SYS_READ, fd, c.rbuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if later(c.rdSet, c.rd) {
				if err := c.TCPConn.SetReadDeadline(c.rd); err != nil {
					c.rerr = err
					return true
				}
				c.rdSet = c.rd
			}
			return false
		case err != nil:
			c.rerr = c.opError("read", os.NewSyscallError("read", err))
		case n == 0:
			c.rerr = io.EOF
		default:
			c.rn = n
		}
		return true
	}
}

func (c *lazyConn) Write(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr = p, 0, nil
	defer func() { c.wbuf = nil }()
	for {
		err := c.rc.Write(c.writeFn)
		if err == nil {
			return c.wn, c.werr
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || !c.early(c.wd) {
			return c.wn, c.opError("write", err)
		}
		if err := c.TCPConn.SetWriteDeadline(c.wd); err != nil {
			return c.wn, err
		}
		c.wdSet = c.wd
	}
}

// tryWrite writes what is left of the buffer; on EAGAIN it makes sure the
// socket's deadline is no later than the one asked for and has the
// runtime wait.
func (c *lazyConn) tryWrite(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, err := rawIO(syscall.SYS_WRITE, fd, c.wbuf[c.wn:])
		if n > 0 {
			c.wn += n
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if later(c.wdSet, c.wd) {
				if err := c.TCPConn.SetWriteDeadline(c.wd); err != nil {
					c.werr = err
					return true
				}
				c.wdSet = c.wd
			}
			return false
		case err != nil:
			c.werr = c.opError("write", os.NewSyscallError("write", err))
			return true
		}
	}
	return true
}

// rawIO reads or writes p on the non-blocking socket fd without telling
// the scheduler it is in a system call (syscall.RawSyscall): the call
// never waits (EAGAIN instead), so the runtime's bookkeeping around a
// syscall that may block (entersyscall, exitsyscall, waking sysmon: 5 to
// 8 % of the proxy's CPU in its profile) buys nothing here.
func rawIO(trap, fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// early reports whether a socket deadline that fired came before the
// deadline asked for, want: it is then moved rather than reported.
func (c *lazyConn) early(want time.Time) bool {
	return want.IsZero() || time.Now().Before(want)
}

func (c *lazyConn) opError(op string, err error) error {
	if err == io.EOF {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
