// Command fanout is the no-Python floor of bench/kill_fanout.py: an SSE fan-out server and an SSE reader, Go
// standard library only, drop-in compatible with bench/_bare_sse.py (direct mode) and bench/_sse_reader.py.
//
//	fanout serve PORT KEY        # as `python -m bench._bare_sse direct PORT KEY`
//	fanout read PORT N KEY TAG   # as `python -m bench._sse_reader PORT N KEY TAG`
//
// serve: GET (any path) opens a chunked text/event-stream whose first chunk is the snapshot event; POST (any
// path) broadcasts one `flag` event for KEY at the next revision to every stream as one HTTP/1.1 chunk, then
// answers 200 with an empty body (the POST connection is kept alive). Bound to 127.0.0.1 only.
//
// How the event is written (FANOUT_WRITE, to try; the default is the one kept): "conn" hands the chunk to a
// goroutine per connection (a buffered channel each; a connection whose channel is full is closed), "direct" writes
// it to each connection in turn from the broadcasting goroutine. Tried on this 2-core machine (2026-12-02, 1,000
// streams, Go readers, 20 kills a try, 12 tries each, load 2-4 from other work): slowest subscriber p50 19-28 ms
// (median ~23.5) per connection against 15-33 ms (median ~27) direct, p99 median ~44 against ~48 ms; the
// per-connection writes use both cores, the direct ones one. Direct costs less CPU (11-17 against 14-20 us per
// subscriber per event: no goroutine woken per write). Per connection is kept: the lower latency to the last.
//
// read: opens N streams (the same request bytes as the Python reader, X-Forwarded-For 10.TAG.i/50.i%50), prints
// "ready" once all answered 200 with their snapshot, then "<revision> <count> <first_ns> <last_ns>"
// (CLOCK_REALTIME ns) for each revision once all N streams have read a `flag` event for KEY at it; on stdin EOF
// it prints the incomplete revisions (count < N) and exits. It reads the raw HTTP/1.1 chunked bytes like the
// Python reader: events are taken up to the last blank line read so far, so an event split across reads,
// several in one read, chunk framing and `: keep-alive` comments are all fine. FANOUT_READ: "epoll" (kept: one
// OS thread, one epoll set, raw read(2)s; epoll.go) or "goroutine" (a goroutine per stream on Go's netpoller).
// In the same tries epoll cost 9.2-9.8 us per subscriber per event in one process against 10.8-13.5, and
// 10-15.5 against 14.8-21 in four; the slowest subscriber was within the noise either way.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var snapshot = []byte("event: snapshot\nid: 1\ndata: {\"revision\":1,\"flags\":{}}\n\n")

func chunk(body []byte) []byte {
	return append(append([]byte(strconv.FormatInt(int64(len(body)), 16)+"\r\n"), body...), '\r', '\n')
}

func main() {
	if len(os.Args) >= 4 && os.Args[1] == "serve" {
		serve(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) >= 6 && os.Args[1] == "read" {
		n, err1 := strconv.Atoi(os.Args[3])
		tag, err2 := strconv.Atoi(os.Args[5])
		if err1 == nil && err2 == nil {
			read(os.Args[2], n, os.Args[4], tag)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "usage: fanout serve PORT KEY | fanout read PORT N KEY TAG")
	os.Exit(2)
}

// ---- serve ----

type sub struct {
	c  net.Conn
	ch chan []byte // "conn" mode only
}

type server struct {
	mu       sync.Mutex
	subs     map[*sub]struct{}
	key      []byte // JSON-encoded, quotes included
	revision int
	perConn  bool
}

// event is _Events.next of bench/_bare_sse.py, byte for byte.
func (s *server) event() []byte {
	s.revision++
	r, k := strconv.Itoa(s.revision), string(s.key)
	data := `{"type":"flag","key":` + k + `,"revision":` + r + `,"flag":{"key":` + k + `,"version":` + r +
		`,"definition":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"on"},` +
		`"offVariant":"off"}}`
	return chunk([]byte("event: flag\nid: " + r + "\ndata: " + data + "\n\n"))
}

func (s *server) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.event()
	for sb := range s.subs {
		if s.perConn {
			select {
			case sb.ch <- b:
			default: // a stalled reader: drop it rather than stall the others
				_ = sb.c.Close()
			}
		} else {
			_, _ = sb.c.Write(b)
		}
	}
}

func serve(port, key string) {
	k, _ := json.Marshal(key)
	s := &server{subs: map[*sub]struct{}{}, key: k, revision: 1, perConn: os.Getenv("FANOUT_WRITE") != "direct"}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go s.handle(c)
	}
}

func (s *server) handle(c net.Conn) {
	defer func() { _ = c.Close() }()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		post := strings.HasPrefix(line, "POST")
		length := 0
		for { // the headers: only Content-Length matters (a POST body is read and ignored)
			h, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" || h == "\n" {
				break
			}
			if name, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "content-length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := r.Discard(length); err != nil {
			return
		}
		if post {
			s.broadcast()
			if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")); err != nil {
				return
			}
			continue
		}
		s.stream(c, r)
		return
	}
}

func (s *server) stream(c net.Conn, r *bufio.Reader) {
	sb := &sub{c: c}
	head := append([]byte("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"),
		chunk(snapshot)...)
	s.mu.Lock() // the snapshot goes out before any event
	if _, err := c.Write(head); err != nil {
		s.mu.Unlock()
		return
	}
	if s.perConn {
		sb.ch = make(chan []byte, 64)
		go func() {
			for b := range sb.ch {
				if _, err := c.Write(b); err != nil {
					_ = c.Close()
				}
			}
		}()
	}
	s.subs[sb] = struct{}{}
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, r) // until the client goes away
	s.mu.Lock()
	delete(s.subs, sb)
	if sb.ch != nil {
		close(sb.ch)
	}
	s.mu.Unlock()
}

// ---- read ----

type rev struct{ count, first, last int64 }

type reader struct {
	mu     sync.Mutex
	n      int64
	marker []byte
	revs   map[int]*rev
	done   map[int]bool
}

func (rd *reader) seen(revision int, now int64) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	got := rd.revs[revision]
	if got == nil {
		got = &rev{0, now, now}
		rd.revs[revision] = got
	}
	got.count++
	got.first, got.last = min(got.first, now), max(got.last, now)
	if got.count == rd.n {
		rd.done[revision] = true
		_, _ = fmt.Fprintf(os.Stdout, "%d %d %d %d\n", revision, got.count, got.first, got.last)
	}
}

var (
	evHead = []byte("event: flag\nid: ")
	evData = []byte("\ndata: ")
)

// scan finds the `flag` events for the reader's key in buf (complete events only).
func (rd *reader) scan(buf []byte, now int64) {
	for {
		i := bytes.Index(buf, evHead)
		if i < 0 {
			return
		}
		buf = buf[i+len(evHead):]
		j := 0
		for j < len(buf) && buf[j] >= '0' && buf[j] <= '9' {
			j++
		}
		if j == 0 || !bytes.HasPrefix(buf[j:], evData) {
			continue
		}
		revision, _ := strconv.Atoi(string(buf[:j]))
		data := buf[j+len(evData):]
		if e := bytes.IndexByte(data, '\n'); e >= 0 {
			data = data[:e]
		}
		if bytes.Contains(data, rd.marker) {
			rd.seen(revision, now)
		}
		buf = buf[j:]
	}
}

const (
	opNone   = iota
	opNew    // the stream has just answered 200 with its snapshot
	opFailed // the stream answered something else (said on stderr)
)

func nowNS() int64 { return time.Now().UnixNano() }

// feed takes what one read gave (data, read at now) into the stream's buffer: the complete events (up to the last
// blank line) are scanned, the rest is kept for the next read.
func (rd *reader) feed(buf *[]byte, data []byte, now int64, open *bool) int {
	b := append(*buf, data...)
	end := bytes.LastIndex(b, sep)
	if end < 0 {
		*buf = b
		return opNone
	}
	op := opNone
	if !*open {
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
			line, _, _ := bytes.Cut(b, []byte("\r\n"))
			fmt.Fprintf(os.Stderr, "fanout read: stream: %s\n", line)
			return opFailed
		}
		*open, op = true, opNew
	}
	if bytes.Contains(b[:end], rd.marker) {
		rd.scan(b[:end], now)
	}
	*buf = append(b[:0], b[end+2:]...)
	return op
}

var sep = []byte("\n\n")

// follow reads one stream in its own goroutine (the "goroutine" reader).
func (rd *reader) follow(c net.Conn, opened chan<- error) {
	var buf []byte
	open := false
	rbuf := make([]byte, 8192)
	for {
		k, err := c.Read(rbuf)
		now := nowNS()
		if k > 0 {
			switch rd.feed(&buf, rbuf[:k], now, &open) {
			case opNew:
				opened <- nil
			case opFailed:
				opened <- fmt.Errorf("the stream did not open")
				return
			}
		}
		if err != nil {
			if !open {
				opened <- fmt.Errorf("closed before the stream opened: %v", err)
			}
			return
		}
	}
}

func read(port string, n int, key string, tag int) {
	rd := &reader{n: int64(n), marker: []byte(`"key":"` + key + `"`), revs: map[int]*rev{}, done: map[int]bool{}}
	request := func(i int) []byte {
		return fmt.Appendf(nil, "GET /api/flags/_stream HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAccept: text/event-stream\r\n"+
			"X-Forwarded-For: 10.%d.%d.%d\r\n\r\n", port, tag, i/50, i%50)
	}
	if os.Getenv("FANOUT_READ") != "goroutine" {
		go rd.readEpoll(port, n, request)
	} else {
		rd.readGoroutines(port, n, request)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	rd.mu.Lock()
	keys := make([]int, 0, len(rd.revs))
	for r := range rd.revs {
		if !rd.done[r] {
			keys = append(keys, r)
		}
	}
	sort.Ints(keys)
	for _, r := range keys {
		got := rd.revs[r]
		fmt.Printf("%d %d %d %d\n", r, got.count, got.first, got.last)
	}
	os.Exit(0)
}

func (rd *reader) readGoroutines(port string, n int, request func(i int) []byte) {
	for start := 0; start < n; start += 100 {
		end := min(n, start+100)
		opened := make(chan error, end-start)
		for i := start; i < end; i++ {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				_, err = c.Write(request(i))
			}
			if err != nil {
				fail(fmt.Errorf("stream %d: %w", i, err))
			}
			go rd.follow(c, opened)
		}
		for i := start; i < end; i++ {
			if err := <-opened; err != nil {
				fail(err)
			}
		}
	}
	fmt.Println("ready")
}
