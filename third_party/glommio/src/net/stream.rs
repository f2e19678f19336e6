// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2020 Datadog, Inc.
//
use crate::{
    reactor::Reactor,
    sys::{self, Source, SourceType},
};
use futures_lite::ready;
use nix::sys::socket::MsgFlags;
use std::{
    cell::Cell,
    io,
    net::Shutdown,
    os::unix::io::{AsRawFd, FromRawFd, RawFd},
    rc::{Rc, Weak},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

type Result<T> = crate::Result<T, ()>;

/// Root trait for socket stream receive buffer
pub trait RxBuf {
    fn read(&mut self, buf: &mut [u8]) -> usize;
    fn peek(&self, buf: &mut [u8]) -> usize;
    fn is_empty(&self) -> bool;
    fn as_bytes(&self) -> &[u8];
    fn consume(&mut self, amt: usize);
    fn buffer_size(&self) -> usize;
    fn handle_result(&mut self, result: usize);
    fn unfilled(&mut self) -> &mut [u8];
}

#[derive(Debug, Default)]
pub struct NonBuffered;

impl RxBuf for NonBuffered {
    fn read(&mut self, _buf: &mut [u8]) -> usize {
        0
    }

    fn peek(&self, _buf: &mut [u8]) -> usize {
        0
    }

    fn is_empty(&self) -> bool {
        true
    }

    fn as_bytes(&self) -> &[u8] {
        &[]
    }

    fn consume(&mut self, _amt: usize) {}

    fn buffer_size(&self) -> usize {
        0
    }

    fn handle_result(&mut self, _result: usize) {}

    fn unfilled(&mut self) -> &mut [u8] {
        &mut []
    }
}

/// Trait for receive buffer implementations
pub trait Buffered: RxBuf {}

/// Non-shared fixed sized receive buffer allocated
/// when buffered stream is created
#[derive(Debug)]
pub struct Preallocated {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    cap: usize,
}

impl Preallocated {
    const DEFAULT_BUFFER_SIZE: usize = 8192;

    /// Creates a fixed sized receive buffer
    pub fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size],
            tail: 0,
            head: 0,
            cap: size,
        }
    }
}

impl Default for Preallocated {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUFFER_SIZE)
    }
}

impl Preallocated {
    fn len(&self) -> usize {
        self.tail - self.head
    }
}

impl Buffered for Preallocated {}

impl RxBuf for Preallocated {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
            self.head += sz;
        }
        sz
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
        }
        sz
    }

    fn is_empty(&self) -> bool {
        self.head >= self.tail
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    fn consume(&mut self, amt: usize) {
        self.head += std::cmp::min(self.len(), amt);
    }

    fn buffer_size(&self) -> usize {
        self.cap
    }

    fn handle_result(&mut self, result: usize) {
        self.tail += result;
    }

    fn unfilled(&mut self) -> &mut [u8] {
        if self.len() == 0 {
            self.head = 0;
            self.tail = 0;
        }
        &mut self.buf[self.tail..]
    }
}

#[derive(Debug)]
struct Timeout {
    id: u64,
    timeout: Cell<Option<Duration>>,
    timer: Cell<Option<Instant>>,
}

impl Timeout {
    fn new(id: u64) -> Self {
        Self {
            id,
            timeout: Cell::new(None),
            timer: Cell::new(None),
        }
    }

    fn get(&self) -> Option<Duration> {
        self.timeout.get()
    }

    fn set(&self, dur: Option<Duration>) -> Result<()> {
        if let Some(dur) = dur.as_ref() {
            if dur.as_nanos() == 0 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL).into());
            }
        }
        self.timeout.set(dur);
        Ok(())
    }

    fn maybe_set_timer(&self, reactor: &Reactor, waker: &Waker) {
        if let Some(timeout) = self.timeout.get() {
            if self.timer.get().is_none() {
                let deadline = Instant::now() + timeout;
                reactor.insert_timer(self.id, deadline, waker.clone());
                self.timer.set(Some(deadline));
            }
        }
    }

    fn cancel_timer(&self, reactor: &Reactor) {
        if self.timer.take().is_some() {
            reactor.remove_timer(self.id);
        }
    }

    fn check(&self, reactor: &Reactor) -> io::Result<()> {
        if let Some(deadline) = self.timer.get() {
            if !reactor.timer_exists(&(deadline, self.id)) {
                reactor.remove_timer(self.id);
                self.timer.take();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Operation timed out",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct NonBufferedStream<S> {
    reactor: Weak<Reactor>,
    stream: S,
    source_tx: Option<Source>,
    source_rx: Option<Source>,
    write_timeout: Timeout,
    read_timeout: Timeout,
    /// percore: reads come from a multishot receive (the executor enabled
    /// them when this stream was created).
    multishot: bool,
    /// percore: the armed multishot receive, if any.
    source_multishot: Option<Source>,
    /// percore: bytes of the first queued buffer already read.
    multishot_offset: usize,
    /// percore: the last multishot receive ended for want of buffers
    /// (`ENOBUFS`): wait for readability with a poll before re-arming.
    multishot_starved: bool,
    /// percore: `send_owned` queues owned sends on the ring (the executor
    /// enabled them when this stream was created); else it writes.
    ring_send: bool,
    /// percore: the owned send in flight, if any: at most one, so that
    /// the bytes go out in order.
    source_send: Option<Source>,
    /// percore: what the last owned send left unsent (the socket buffer
    /// filled up), being written the usual way: the buffer and where its
    /// unsent bytes start.
    send_rest: Option<(Vec<u8>, usize)>,
}

impl<S> Drop for NonBufferedStream<S> {
    /// percore: buffers the stream received and did not read go back to the
    /// ring, and so will those of completions still in flight.
    ///
    /// The armed receive holds the socket in the kernel until its
    /// cancellation completes, after the socket's fd is closed. If the stream
    /// is dropped by a panic unwinding its executor, that executor never
    /// submits the cancellation (its rings are leaked, not closed): the
    /// socket is shut down here so that the peer sees the connection end.
    fn drop(&mut self) {
        // percore: an owned send already placed in the submission ring goes
        // to the kernel now, while the socket's fd is still this stream's
        // (it is closed right after this): submitted later, it would reach
        // whatever socket reuses the number. One still in glommio's queue is
        // cancelled by its source's drop, and never reaches the kernel.
        if let Some(source) = self.source_send.take() {
            if !source.has_result() {
                if let Some(reactor) = self.reactor.upgrade() {
                    reactor.submit_placed();
                }
            }
        }
        let Some(source) = self.source_multishot.take() else {
            return;
        };
        if std::thread::panicking() {
            let _ = sys::shutdown(source.raw(), Shutdown::Both);
        }
        let buffers = self.reactor.upgrade().and_then(|r| r.recv_buffers());
        let mut state = source.multishot_mut();
        if let Some(buffers) = buffers {
            for (res, bid) in state.ready.drain(..) {
                if res > 0 {
                    buffers.recycle(bid);
                }
            }
        }
        state.abandoned = true;
    }
}

impl<S: AsRawFd> NonBufferedStream<S> {
    fn init(&mut self) {
        let reactor = self.reactor.upgrade().unwrap();
        let stream_fd = self.stream.as_raw_fd();
        self.ring_send = reactor.ring_send();
        if reactor.recv_buffers().is_some() {
            self.multishot = true;
            self.source_multishot = reactor.recv_multishot(stream_fd);
        } else {
            self.source_rx = Some(reactor.poll_read_ready(stream_fd));
        }
    }

    /// percore: a read served by the connection's multishot receive: the
    /// queued buffers first (as many as fit in `buf`), then end of stream or
    /// the error that ended it. With nothing queued and nothing armed, one
    /// direct `recv` (the data may be there already), then a new multishot
    /// receive, or a poll if the last one ran out of buffers. Never a direct
    /// `recv` while one is armed: its queued completions hold older bytes.
    fn poll_read_multishot(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
        reactor: &Reactor,
    ) -> Poll<io::Result<usize>> {
        let Some(buffers) = reactor.recv_buffers() else {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::EINVAL)));
        };
        if let Some(source) = self.source_multishot.as_ref() {
            let mut state = source.multishot_mut();
            let mut copied = 0;
            while let Some(&(res, bid)) = state.ready.front() {
                if res <= 0 || copied == buf.len() {
                    break;
                }
                let data = buffers.data(bid, res as usize);
                let data = data.get(self.multishot_offset..).unwrap_or_default();
                let n = data.len().min(buf.len() - copied);
                buf[copied..copied + n].copy_from_slice(&data[..n]);
                copied += n;
                self.multishot_offset += n;
                if self.multishot_offset >= res as usize {
                    state.ready.pop_front();
                    buffers.recycle(bid);
                    self.multishot_offset = 0;
                }
            }
            if copied > 0 {
                drop(state);
                self.read_timeout.cancel_timer(reactor);
                return Poll::Ready(Ok(copied));
            }
            match state.ready.front().copied() {
                // End of stream: every later read sees it too.
                Some((0, _)) => {
                    drop(state);
                    self.read_timeout.cancel_timer(reactor);
                    return Poll::Ready(Ok(0));
                }
                Some((err, _)) => {
                    // An error always ends the operation.
                    drop(state);
                    self.source_multishot = None;
                    if err != -libc::ENOBUFS {
                        self.read_timeout.cancel_timer(reactor);
                        return Poll::Ready(Err(io::Error::from_raw_os_error(-err)));
                    }
                    self.multishot_starved = true;
                    buffers.note_exhausted();
                }
                None if state.ended => {
                    drop(state);
                    self.source_multishot = None;
                }
                None => {
                    drop(state);
                    poll_err!(self.read_timeout.check(reactor));
                    source.add_waiter_single(cx.waker());
                    self.read_timeout.maybe_set_timer(reactor, cx.waker());
                    return Poll::Pending;
                }
            }
        }

        // Nothing armed.
        let poll_pending = self
            .source_rx
            .as_ref()
            .map(|src| src.result().is_none())
            .unwrap_or(false);
        if !poll_pending {
            if let Some(result) = super::yolo_recv(self.stream.as_raw_fd(), buf) {
                self.source_rx.take();
                self.read_timeout.cancel_timer(reactor);
                let result = poll_err!(result);
                if result > 0 {
                    self.source_multishot = reactor.recv_multishot(self.stream.as_raw_fd());
                }
                return Poll::Ready(Ok(result));
            }
            if self.multishot_starved {
                self.multishot_starved = false;
                self.source_rx = Some(reactor.poll_read_ready(self.stream.as_raw_fd()));
            } else {
                self.source_multishot = reactor.recv_multishot(self.stream.as_raw_fd());
            }
        }
        poll_err!(self.read_timeout.check(reactor));
        let Some(source) = self.source_multishot.as_ref().or(self.source_rx.as_ref()) else {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::EINVAL)));
        };
        source.add_waiter_single(cx.waker());
        self.read_timeout.maybe_set_timer(reactor, cx.waker());
        Poll::Pending
    }

    pub(crate) fn try_peek(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        super::yolo_peek(self.stream.as_raw_fd(), buf)
    }

    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let source = self.reactor.upgrade().unwrap().recv(
            self.stream.as_raw_fd(),
            buf.len(),
            MsgFlags::MSG_PEEK,
        );

        let sz = source.collect_rw().await?;
        match source.extract_source_type() {
            SourceType::SockRecv(mut src) => {
                buf[0..sz].copy_from_slice(&src.take().unwrap().as_bytes()[0..sz]);
            }
            _ => unreachable!(),
        }
        Ok(sz)
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let reactor = self.reactor.upgrade().unwrap();
        let reactor = reactor.as_ref();
        if self.multishot {
            return self.poll_read_multishot(cx, buf, reactor);
        }

        let no_pending_poll = self
            .source_rx
            .as_ref()
            .map(|src| src.result().is_some())
            .unwrap_or(true);

        if no_pending_poll {
            if let Some(result) = super::yolo_recv(self.stream.as_raw_fd(), buf) {
                self.source_rx.take();
                self.read_timeout.cancel_timer(reactor);
                let result = poll_err!(result);
                // Start an early poll if the buffer is not fully filled. So when
                // the next time `poll_read` is called, it will be known immediately
                // whether the underlying stream is ready for reading.
                if result > 0 && result < buf.len() {
                    self.source_rx = Some(reactor.poll_read_ready(self.stream.as_raw_fd()));
                    // The `rush_dispatch`s here and after could be removed to
                    // improve performance if #458 is handled appropriately.
                    // reactor.rush_dispatch(self.source_rx.as_ref().unwrap());
                }
                return Poll::Ready(Ok(result));
            }
        }

        poll_err!(self.read_timeout.check(reactor));

        if no_pending_poll {
            self.source_rx = Some(reactor.poll_read_ready(self.stream.as_raw_fd()));
            // reactor.rush_dispatch(self.source_rx.as_ref().unwrap());
        }

        let source = self.source_rx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.read_timeout.maybe_set_timer(reactor, cx.waker());
        Poll::Pending
    }

    /// percore: sends `buf` after what was sent before, and returns the
    /// previous owned send's buffer, cleared, for the caller's next
    /// responses (see `poll_sent`). With owned sends, `buf` is queued on
    /// the ring and goes out in the executor's next `io_uring_enter`; the
    /// stream holds it until then (`take_sent`, `poll_sent`). Without, it is
    /// written at once and handed back.
    pub(crate) fn poll_send_owned(
        &mut self,
        cx: &Context<'_>,
        buf: &mut Option<Vec<u8>>,
    ) -> Poll<io::Result<Option<Vec<u8>>>> {
        let previous = ready!(self.poll_sent(cx))?;
        let Some(out) = buf.take() else {
            return Poll::Ready(Ok(previous));
        };
        if out.is_empty() {
            return Poll::Ready(Ok(Some(out)));
        }
        if self.ring_send {
            let reactor = self.reactor.upgrade().unwrap();
            self.source_send = Some(reactor.send_owned(self.stream.as_raw_fd(), out));
            return Poll::Ready(Ok(previous));
        }
        // Not on the ring: the path of a send the ring left short. If it
        // waits, the next polls finish it and hand it back as `previous`.
        self.send_rest = Some((out, 0));
        self.poll_sent(cx).map_ok(|sent| sent.or(previous))
    }

    /// percore: the previous owned send's buffer, cleared, if that send is
    /// over and went out whole; `None` if it is still in flight, failed, or
    /// there was none (`poll_sent` then tells which). Never waits: a
    /// caller takes its buffer back before it writes the next responses, so
    /// that they need no new allocation.
    pub(crate) fn take_sent(&mut self) -> Option<Vec<u8>> {
        // An error stays with the source for `poll_sent` to report.
        let result = self.source_send.as_ref()?.result()?.ok()?;
        self.settle_send(Ok(result)).ok().flatten()
    }

    /// percore: takes the resolved owned send out of the stream with its
    /// `result`: its buffer, cleared, if it went out whole; `None` if it
    /// left bytes for `send_rest` (a short send, or `EAGAIN`: the socket
    /// buffer filled up); or its error.
    fn settle_send(&mut self, result: io::Result<usize>) -> io::Result<Option<Vec<u8>>> {
        let Some(mut buf) = self.source_send.take().and_then(|s| s.take_send_buffer()) else {
            return Ok(None);
        };
        let sent = match result {
            Ok(n) if n >= buf.len() => {
                buf.clear();
                return Ok(Some(buf));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
            Err(err) => return Err(err),
        };
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.note_owned_send_short();
        }
        self.send_rest = Some((buf, sent));
        Ok(None)
    }

    /// percore: waits until everything sent before is out of the stream's
    /// hands (in the socket buffer), and returns the last owned send's
    /// buffer, cleared, if there was one. What the ring left unsent is
    /// written here the usual way, under the write timeout. An owned send
    /// still queued is resolved in the executor's next turn, which does not
    /// sleep for it (`note_owned_send_awaited`).
    pub(crate) fn poll_sent(&mut self, cx: &Context<'_>) -> Poll<io::Result<Option<Vec<u8>>>> {
        loop {
            if let Some((mut buf, mut start)) = self.send_rest.take() {
                while start < buf.len() {
                    match self.poll_write_direct(cx, &buf[start..]) {
                        Poll::Pending => {
                            self.send_rest = Some((buf, start));
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        Poll::Ready(Ok(n)) => start += n,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    }
                }
                buf.clear();
                return Poll::Ready(Ok(Some(buf)));
            }
            let Some(source) = self.source_send.as_ref() else {
                return Poll::Ready(Ok(None));
            };
            let Some(result) = source.result() else {
                source.add_waiter_single(cx.waker());
                if let Some(reactor) = self.reactor.upgrade() {
                    reactor.note_owned_send_awaited();
                }
                return Poll::Pending;
            };
            // Whole: done. Short: the loop writes the rest the usual way.
            if let Some(buf) = self.settle_send(result)? {
                return Poll::Ready(Ok(Some(buf)));
            }
        }
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // percore: after what owned sends still hold, in order.
        if self.source_send.is_some() || self.send_rest.is_some() {
            ready!(self.poll_sent(cx))?;
        }
        self.poll_write_direct(cx, buf)
    }

    fn poll_write_direct(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // On the write path, we always start with calling `yolo_send`, because
        // it is very likely to success. It could be a waste if it already timed
        // out since the last `poll_write`, but it would not cost much more to
        // give it one last chance in this case.
        if let Some(result) = super::yolo_send(self.stream.as_raw_fd(), buf) {
            let reactor = self.reactor.upgrade().unwrap();
            self.write_timeout.cancel_timer(reactor.as_ref());
            self.source_tx.take();
            return Poll::Ready(result);
        }

        let reactor = self.reactor.upgrade().unwrap();
        let reactor = reactor.as_ref();
        poll_err!(self.write_timeout.check(reactor));

        let no_pending_poll = self
            .source_tx
            .as_ref()
            .map(|src| src.result().is_some())
            .unwrap_or(true);

        if no_pending_poll {
            self.source_tx = Some(reactor.poll_write_ready(self.stream.as_raw_fd()));
        }

        let source = self.source_tx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.write_timeout.maybe_set_timer(reactor, cx.waker());
        Poll::Pending
    }

    pub(crate) fn poll_close(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        // percore: after what owned sends still hold.
        ready!(self.poll_sent(cx))?;
        self.source_tx.take();
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), Shutdown::Write))
    }

    /// io_uring has support for shutdown now, but it is not in any released
    /// kernel. Even with my "let's use latest" policy it would be crazy to
    /// mandate a kernel that doesn't even exist. So in preparation for that
    /// we'll sync-emulate this but already on an async wrapper
    pub(crate) fn poll_shutdown(
        &self,
        _cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), how))
    }
}

#[derive(Debug)]
pub(crate) struct GlommioStream<S, B> {
    stream: NonBufferedStream<S>,
    rx_buf: B,
    rx_done: Cell<bool>,
}

impl<S> From<socket2::Socket> for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + From<socket2::Socket> + Unpin,
{
    fn from(socket: socket2::Socket) -> Self {
        let reactor = crate::executor().reactor();
        let mut stream = NonBufferedStream {
            reactor: Rc::downgrade(&reactor),
            stream: socket.into(),
            source_tx: None,
            source_rx: None,
            write_timeout: Timeout::new(reactor.register_timer()),
            read_timeout: Timeout::new(reactor.register_timer()),
            multishot: false,
            source_multishot: None,
            multishot_offset: 0,
            multishot_starved: false,
            ring_send: false,
            source_send: None,
            send_rest: None,
        };
        stream.init();
        GlommioStream {
            stream,
            rx_buf: NonBuffered,
            rx_done: Cell::new(false),
        }
    }
}

impl<S: AsRawFd> AsRawFd for GlommioStream<S, NonBuffered> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.stream.as_raw_fd()
    }
}

impl<S> FromRawFd for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + FromRawFd + From<socket2::Socket> + Unpin,
{
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        let socket = socket2::Socket::from_raw_fd(fd);
        GlommioStream::from(socket)
    }
}

impl<S> GlommioStream<S, NonBuffered> {
    pub(crate) fn buffered_with<B: Buffered>(self, rx_buf: B) -> GlommioStream<S, B> {
        GlommioStream {
            stream: self.stream,
            rx_buf,
            rx_done: self.rx_done,
        }
    }
}

impl<S: AsRawFd, B: RxBuf> GlommioStream<S, B> {
    /// Receives data on the socket from the remote address to which it is
    /// connected, without removing that data from the queue.
    ///
    /// On success, returns the number of bytes peeked.
    /// Successive calls return the same data. This is accomplished by passing
    /// `MSG_PEEK` as a flag to the underlying `recv` system call.
    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pos = self.rx_buf.peek(buf);
        if pos < buf.len() && !self.rx_done.get() {
            if let Some(result) = self.stream.try_peek(&mut buf[pos..]) {
                match result {
                    Err(e) => return Err(e),
                    Ok(len) => {
                        pos += len;
                        if len == 0 {
                            self.rx_done.set(true);
                        }
                    }
                }
            }
        }
        if pos > 0 || self.rx_done.get() {
            return Ok(pos);
        }
        self.stream.peek(buf).await
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.rx_buf.is_empty() {
            if buf.len() >= self.rx_buf.buffer_size() {
                return self.stream.poll_read(cx, buf);
            }
            if !self.rx_done.get() {
                poll_err!(ready!(self.poll_replenish_buffer(cx)));
            }
        }
        Poll::Ready(Ok(self.rx_buf.read(buf)))
    }

    fn poll_replenish_buffer(&mut self, cx: &Context<'_>) -> Poll<io::Result<usize>> {
        let result = poll_err!(ready!(self.stream.poll_read(cx, self.rx_buf.unfilled())));
        self.rx_buf.handle_result(result);
        if result == 0 {
            self.rx_done.set(true);
        }
        Poll::Ready(Ok(result))
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_write(cx, buf)
    }

    pub(crate) fn poll_send_owned(
        &mut self,
        cx: &Context<'_>,
        buf: &mut Option<Vec<u8>>,
    ) -> Poll<io::Result<Option<Vec<u8>>>> {
        self.stream.poll_send_owned(cx, buf)
    }

    pub(crate) fn take_sent(&mut self) -> Option<Vec<u8>> {
        self.stream.take_sent()
    }

    pub(crate) fn poll_sent(&mut self, cx: &Context<'_>) -> Poll<io::Result<Option<Vec<u8>>>> {
        self.stream.poll_sent(cx)
    }

    pub(crate) fn poll_flush(&self, _cx: &Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_close(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_close(cx)
    }

    pub(crate) fn poll_shutdown(
        &self,
        cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        self.stream.poll_shutdown(cx, how)
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.write_timeout.set(dur)
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.read_timeout.set(dur)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.stream.write_timeout.get()
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.stream.read_timeout.get()
    }

    pub(crate) fn stream(&self) -> &S {
        &self.stream.stream
    }
}

impl<S: AsRawFd, B: Buffered> GlommioStream<S, B> {
    pub(crate) fn poll_fill_buf(&mut self, cx: &Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.rx_buf.is_empty() {
            poll_err!(ready!(self.poll_replenish_buffer(cx)));
        }
        Poll::Ready(Ok(self.rx_buf.as_bytes()))
    }

    pub(crate) fn consume(&mut self, amt: usize) {
        self.rx_buf.consume(amt);
    }
}
