package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// readEpoll is `read` on one OS thread with one epoll set and raw read(2)s: no goroutine per stream, no
// netpoller hand-off. The streams are connected (blocking) and sent their request first; the loop then reads
// whatever is ready, until stdin's EOF (see read) ends the process.
func (rd *reader) readEpoll(port string, n int, requests func(i int) []byte) {
	runtime.LockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		fail(err)
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		fail(err)
	}
	addr := &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}
	streams := make(map[int32]*epStream, n)
	for i := 0; i < n; i++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			err = syscall.Connect(fd, addr)
		}
		if err == nil {
			_, err = syscall.Write(fd, requests(i))
		}
		if err == nil {
			err = syscall.SetNonblock(fd, true)
		}
		if err == nil {
			err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd,
				&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)})
		}
		if err != nil {
			fail(fmt.Errorf("stream %d: %w", i, err))
		}
		streams[int32(fd)] = &epStream{fd: fd}
	}
	events := make([]syscall.EpollEvent, 256)
	rbuf := make([]byte, 65536)
	opened := 0
	for {
		k, err := syscall.EpollWait(ep, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail(err)
		}
		for _, ev := range events[:k] {
			s := streams[ev.Fd]
			if s == nil {
				continue
			}
			for {
				m, err := syscall.Read(s.fd, rbuf)
				if m > 0 {
					switch rd.feed(&s.buf, rbuf[:m], nowNS(), &s.open) {
					case opNew:
						if opened++; opened == n {
							fmt.Println("ready")
						}
					case opFailed:
						os.Exit(1)
					}
				}
				if err == syscall.EAGAIN || err == syscall.EINTR {
					break
				}
				if m <= 0 || err != nil { // EOF or an error: the stream is over
					if !s.open {
						fail(fmt.Errorf("stream closed before it opened: %v", err))
					}
					_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
					_ = syscall.Close(s.fd)
					delete(streams, ev.Fd)
					break
				}
				if m < len(rbuf) {
					break // level-triggered: anything left is reported again
				}
			}
		}
	}
}

type epStream struct {
	fd   int
	open bool
	buf  []byte
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fanout read:", err)
	os.Exit(1)
}
