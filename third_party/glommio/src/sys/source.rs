// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2021 Datadog, Inc.
//
use crate::{
    iou::sqe::SockAddrStorage,
    sys::{
        DmaBuffer, IoBuffer, OsResult, PollableStatus, ReactorQueue, SourceId, Statx, TimeSpec64,
        Wakers,
    },
    GlommioError, IoRequirements, ReactorErrorKind, RingIoStats, TaskQueueHandle,
};
use futures_lite::{future, io};
use std::{
    cell::{Ref, RefCell, RefMut},
    collections::VecDeque,
    convert::TryFrom,
    ffi::CString,
    fmt,
    mem::MaybeUninit,
    os::unix::io::RawFd,
    path::PathBuf,
    pin::Pin,
    rc::Rc,
    task::{Poll, Waker},
    time::Duration,
};

#[derive(Debug)]
#[allow(dead_code)] // Clippy is unhappy with some of the fields on these enums never being read,
                    // but they are certainly used, and read by debug
pub(crate) enum SourceType {
    Write(PollableStatus, IoBuffer),
    Read(PollableStatus, Option<IoBuffer>),
    PollAdd,
    SockSend(DmaBuffer),
    SockRecv(Option<DmaBuffer>),
    // percore: the four socket-address variants are boxed: unboxed they made
    // every source (one or two per open connection) 472 bytes, not 280.
    #[allow(clippy::type_complexity)]
    SockRecvMsg(
        Box<(
            Option<DmaBuffer>,
            libc::iovec,
            libc::msghdr,
            MaybeUninit<nix::sys::socket::sockaddr_storage>,
        )>,
    ),
    SockSendMsg(
        Box<(
            DmaBuffer,
            libc::iovec,
            libc::msghdr,
            nix::sys::socket::SockaddrStorage,
        )>,
    ),
    Open(CString),
    FdataSync,
    Fallocate,
    Truncate,
    Close,
    LinkRings,
    ForeignNotifier(u64, bool),
    Statx(CString, Box<RefCell<Statx>>),
    Timeout(TimeSpec64, u32),
    Connect(Box<nix::sys::socket::SockaddrStorage>),
    Accept(Box<SockAddrStorage>),
    Rename(PathBuf, PathBuf),
    CreateDir(PathBuf),
    Remove(PathBuf),
    BlockingFn,
    Invalid,
    CopyFileRange(RawFd, u64, usize),
    /// percore: a multishot socket receive into provided buffers.
    RecvMultishot(MultishotRecv),
    /// percore: a socket send of a whole buffer the source owns until the
    /// send is resolved (see `Reactor::send_owned`).
    SendOwned(Vec<u8>),
    #[cfg(feature = "bench")]
    Noop,
}

impl TryFrom<SourceType> for Statx {
    type Error = GlommioError<()>;

    fn try_from(value: SourceType) -> Result<Self, Self::Error> {
        match value {
            SourceType::Statx(_, buf) => Ok(buf.into_inner()),
            src => Err(GlommioError::ReactorError(
                ReactorErrorKind::IncorrectSourceType(format!("{src:?}")),
            )),
        }
    }
}

/// percore: what a multishot receive (`IORING_RECV_MULTISHOT` with
/// `IOSQE_BUFFER_SELECT`) delivered and its stream has not read yet. One
/// operation serves every read of a connection: each completion carries the
/// bytes in a provided buffer (`sys::buf_ring`), and the operation stays in
/// the kernel while completions carry `IORING_CQE_F_MORE`.
#[derive(Debug, Default)]
pub(crate) struct MultishotRecv {
    /// Completions in arrival order: the byte count and the buffer holding
    /// them (`res > 0`), or end of stream (`0`) or an error (`-errno`), which
    /// hold no buffer and come last.
    pub(crate) ready: VecDeque<(i32, u16)>,
    /// The kernel ended the operation (a completion without `F_MORE`).
    pub(crate) ended: bool,
    /// The stream is gone: buffers of completions still in flight go straight
    /// back to the ring.
    pub(crate) abandoned: bool,
}

#[derive(PartialEq, Clone, Copy)]
pub(crate) enum EnqueuedStatus {
    Enqueued,
    Canceled,
    Dispatched,
}

#[derive(Clone)]
pub struct EnqueuedSource {
    pub(crate) id: SourceId,
    pub(crate) queue: ReactorQueue,
    pub(crate) status: EnqueuedStatus,
}

pub(crate) type StatsCollectionFn = fn(&io::Result<usize>, &mut RingIoStats, waiters: u64) -> ();
pub(crate) type LatencyCollectionFn =
    fn(std::time::Duration, std::time::Duration, std::time::Duration, &mut RingIoStats) -> ();

#[derive(Copy, Clone)]
pub(crate) struct StatsCollection {
    /// fulfilled runs when the source exits the reactor
    pub(crate) fulfilled: Option<StatsCollectionFn>,

    /// reused runs when a fulfilled source is reused by another consumer
    pub(crate) reused: Option<StatsCollectionFn>,

    /// Called when a result is first consumed. It collects the time
    /// it took for user code to consume the result of a fulfilled source.
    /// This is called once, even if the source is reused multiple time.
    pub(crate) latency: Option<LatencyCollectionFn>,
}

/// A registered source of I/O events.
pub(crate) struct InnerSource {
    /// Raw file descriptor on Unix platforms.
    pub(crate) raw: RawFd,

    /// Tasks interested in events on this source.
    pub(crate) wakers: Wakers,

    pub(crate) source_type: SourceType,

    pub(crate) io_requirements: IoRequirements,

    /// percore: boxed (8 bytes, not 24, in every source); only the
    /// operations with a linked timeout set one.
    pub(crate) timeout: Option<Box<TimeSpec64>>,

    pub(crate) enqueued: Option<EnqueuedSource>,

    /// percore: a reference to one of the reactor's constant collections
    /// (8 bytes, not 32, in every source).
    pub(crate) stats_collection: Option<&'static StatsCollection>,

    pub(crate) task_queue: Option<TaskQueueHandle>,
}

// percore: an open connection holds one or two sources (its multishot
// receive, and between requests its last owned send), each in an
// `Rc<RefCell<InnerSource>>`: 192 bytes here make a 216-byte allocation,
// a 224-byte chunk in glibc (232 bytes made a 272-byte chunk, and 280 a
// 320-byte one).
const _: () = assert!(std::mem::size_of::<InnerSource>() <= 192);

impl InnerSource {
    /// percore: whether the source's statistics collection records I/O
    /// latencies (file reads with `record_io_latencies`). Only then are
    /// its queue, submit and fulfil times read from the clock: three
    /// clock reads per operation that sockets never use.
    #[inline]
    pub(crate) fn records_latency(&self) -> bool {
        self.stats_collection.is_some_and(|x| x.latency.is_some())
    }

    pub(crate) fn update_source_type(&mut self, source_type: SourceType) -> SourceType {
        std::mem::replace(&mut self.source_type, source_type)
    }
}

impl fmt::Debug for InnerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnerSource")
            .field("raw", &self.raw)
            .field("wakers", &self.wakers)
            .field("source_type", &self.source_type)
            .field("io_requirements", &self.io_requirements)
            .finish()
    }
}

#[derive(Debug)]
pub struct Source {
    pub(crate) inner: Pin<Rc<RefCell<InnerSource>>>,
}

impl Source {
    /// Registers an I/O source in the reactor.
    pub(crate) fn new(
        ioreq: IoRequirements,
        raw: RawFd,
        source_type: SourceType,
        stats_collection: Option<&'static StatsCollection>,
        task_queue: Option<TaskQueueHandle>,
    ) -> Source {
        let fresh = InnerSource {
            raw,
            wakers: Wakers::new(),
            source_type,
            io_requirements: ioreq,
            enqueued: None,
            timeout: None,
            stats_collection,
            task_queue,
        };
        // percore: reuse a recycled allocation (see `recycle`) when there is one.
        let inner = match SOURCE_POOL.with(|pool| pool.borrow_mut().pop()) {
            Some(inner) => {
                *inner.borrow_mut() = fresh;
                inner
            }
            None => Rc::pin(RefCell::new(fresh)),
        };
        Source { inner }
    }

    pub(crate) fn set_timeout(&self, d: Duration) -> Option<Duration> {
        let mut inner = self.inner.borrow_mut();
        let dur = match TimeSpec64::try_from(d) {
            Ok(dur) | Err(dur) => dur,
        };
        let old = inner.timeout.replace(Box::new(dur));
        old.map(|t| Duration::from(*t))
    }

    pub(super) fn timeout_ref(&self) -> Ref<'_, Option<Box<TimeSpec64>>> {
        Ref::map(self.inner.borrow(), |x| &x.timeout)
    }

    pub(super) fn source_type(&self) -> Ref<'_, SourceType> {
        Ref::map(self.inner.borrow(), |x| &x.source_type)
    }

    pub(crate) fn source_type_mut(&self) -> RefMut<'_, SourceType> {
        RefMut::map(self.inner.borrow_mut(), |x| &mut x.source_type)
    }

    pub(crate) fn extract_source_type(self) -> SourceType {
        self.inner
            .borrow_mut()
            .update_source_type(SourceType::Invalid)
    }

    pub(crate) fn extract_buffer(self) -> IoBuffer {
        let stype = self.extract_source_type();
        match stype {
            SourceType::Read(_, Some(buffer)) => buffer,
            SourceType::Write(_, buffer) => buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        }
    }

    pub(crate) fn buffer(&self) -> Ref<'_, IoBuffer> {
        Ref::map(self.source_type(), |stype| match stype {
            SourceType::Read(_, Some(buffer)) => buffer,
            SourceType::Write(_, buffer) => buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        })
    }

    /// Has the operation completed (its completion reaped)? Unlike
    /// `result`, this records no statistics.
    pub(crate) fn has_result(&self) -> bool {
        self.inner.borrow().wakers.result.is_some()
    }

    pub(crate) fn result(&self) -> Option<io::Result<usize>> {
        let mut inner = self.inner.borrow_mut();
        let ret = inner
            .wakers
            .result
            .as_ref()
            .map(|x| OsResult::from(x).into());
        if ret.is_none() {
            return ret;
        }

        // if there is a scheduler latency collection function present, invoke it once
        if let Some(Some(stat_fn)) = inner.stats_collection.as_ref().map(|x| x.latency) {
            if let Some(lat) = inner.wakers.timestamps() {
                drop(inner);
                let pre_lat = lat.submitted_at - lat.queued_at;
                let io_lat = lat.fulfilled_at - lat.submitted_at;
                let post_lat = lat.fulfilled_at.elapsed();

                let reactor = &crate::executor().reactor().sys;
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor.ring_for_source(self).io_stats_mut(),
                );
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor
                        .ring_for_source(self)
                        .io_stats_for_task_queue_mut(crate::executor().current_task_queue()),
                );
            }
        }

        ret
    }

    // adds a single waiter to the list, replacing any waiter that may already
    // exist. Should be used for single streams that map a future 1:1 to their I/O
    // source
    pub(crate) fn add_waiter_single(&self, waker: &Waker) {
        let mut inner = self.inner.borrow_mut();
        let waiters = &mut inner.wakers.waiters;
        match waiters.first_mut() {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
            }
            None => waiters.push(waker.clone()),
        }
        debug_assert_eq!(inner.wakers.waiters.len(), 1)
    }

    // adds a waiter to the list. Useful for streams that have many futures waiting
    // on a single I/O source
    pub(crate) fn add_waiter_many(&self, waker: Waker) {
        self.inner.borrow_mut().wakers.waiters.push(waker)
    }

    /// percore: the state of a multishot receive source.
    ///
    /// Panics if the source is of another type.
    pub(crate) fn multishot_mut(&self) -> RefMut<'_, MultishotRecv> {
        RefMut::map(self.inner.borrow_mut(), |x| match &mut x.source_type {
            SourceType::RecvMultishot(state) => state,
            other => panic!("not a multishot receive: {other:?}"),
        })
    }

    /// percore: takes the buffer of a resolved owned send (see
    /// `Reactor::send_owned`).
    pub(crate) fn take_send_buffer(&self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.inner.borrow_mut().source_type, SourceType::Invalid) {
            SourceType::SendOwned(buf) => Some(buf),
            other => {
                self.inner.borrow_mut().source_type = other;
                None
            }
        }
    }

    pub(super) fn is_installed(&self) -> Option<bool> {
        match &self.inner.borrow().source_type {
            SourceType::ForeignNotifier(_, installed) => Some(*installed),
            _ => None,
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.inner.borrow().raw
    }

    pub(crate) fn stats_collection(&self) -> Option<&'static StatsCollection> {
        self.inner.borrow().stats_collection
    }

    pub(crate) async fn collect_rw(&self) -> io::Result<usize> {
        future::poll_fn(|cx| {
            if let Some(result) = self.result() {
                return Poll::Ready(result);
            }

            self.add_waiter_many(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// percore: most finished sources whose allocation is kept for reuse, per
/// thread (an executor's thread); a source is a few hundred bytes.
const SOURCE_POOL_MAX: usize = 256;

thread_local! {
    /// percore: allocations of finished sources, reused by `Source::new`.
    /// Every short socket read polls with a new source, and every turn that
    /// parks arms a timer and a ring link with new sources: without reuse,
    /// each of these is a `malloc` and a `free` per request.
    static SOURCE_POOL: RefCell<Vec<Pin<Rc<RefCell<InnerSource>>>>> =
        const { RefCell::new(Vec::new()) };
}

/// percore: if `inner` is the last handle of its source (neither the
/// reactor's source map nor any other `Source` holds it, so the kernel is
/// done with its buffers), clears it and keeps its allocation in this
/// thread's pool for the next `Source::new`. The caller drops its handle
/// right after.
pub(crate) fn recycle(inner: &Pin<Rc<RefCell<InnerSource>>>) {
    // SAFETY: the `Rc` is only used to read its counts and is re-pinned
    // at once; nothing is moved out of the pinned value.
    let rc = unsafe { Pin::into_inner_unchecked(inner.clone()) };
    if Rc::strong_count(&rc) != 2 || Rc::weak_count(&rc) != 0 {
        return;
    }
    let Ok(mut fields) = rc.try_borrow_mut() else {
        return;
    };
    // Drop what the finished operation held (buffers, wakers, paths) now.
    fields.source_type = SourceType::Invalid;
    fields.wakers = Wakers::new();
    fields.enqueued = None;
    fields.task_queue = None;
    fields.stats_collection = None;
    drop(fields);
    // SAFETY: the value was pinned and is still pinned; it is not moved.
    let inner = unsafe { Pin::new_unchecked(rc) };
    SOURCE_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.capacity() == 0 {
            pool.reserve_exact(SOURCE_POOL_MAX);
        }
        if pool.len() < SOURCE_POOL_MAX {
            pool.push(inner);
        }
    });
}

impl Drop for Source {
    fn drop(&mut self) {
        self.cancel_if_enqueued();
        recycle(&self.inner);
    }
}

impl Source {
    fn cancel_if_enqueued(&mut self) {
        let mut inner = self.inner.borrow_mut();
        let enqueued = inner.enqueued.as_mut();
        if let Some(EnqueuedSource { id, queue, status }) = enqueued {
            match status {
                EnqueuedStatus::Enqueued => {
                    // We never submitted the request, so it's safe to consume
                    // source here -- kernel didn't see our buffers. By consuming
                    // the source we are signaling to the submit method that we are
                    // no longer interested in submitting this. This should be cheaper
                    // than removing elements from the vector all the time.

                    *status = EnqueuedStatus::Canceled;
                }
                EnqueuedStatus::Dispatched => {
                    // We are cancelling this request, but it is already submitted.
                    // This means that the kernel might be using the buffers right
                    // now, so we delay `consume_source` until we consume the
                    // corresponding event from the completion queue.

                    queue.borrow_mut().cancel_request(*id);
                    *status = EnqueuedStatus::Canceled; // not necessary, but useful for correctness
                }
                EnqueuedStatus::Canceled => unreachable!(),
            }
        }
    }
}
