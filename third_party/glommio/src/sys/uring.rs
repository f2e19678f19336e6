// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2020 Datadog, Inc.
//
use alloc::alloc::Layout;
use log::warn;
use nix::{
    fcntl::{FallocateFlags, OFlag},
    poll::PollFlags,
    sys::socket::{SockaddrLike, SockaddrStorage},
};
use rlimit::Resource;
use std::{
    cell::{Cell, Ref, RefCell, RefMut},
    collections::VecDeque,
    convert::TryFrom,
    ffi::CStr,
    fmt,
    future::Future,
    io,
    ops::Range,
    os::unix::io::RawFd,
    panic,
    pin::Pin,
    ptr,
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    free_list::{FreeList, Idx},
    iou,
    iou::sqe::{FsyncFlags, SockAddrStorage, StatxFlags, StatxMode, SubmissionFlags, TimeoutFlags},
    sys::{
        self,
        blocking::{BlockingThreadOp, BlockingThreadPool},
        dma_buffer::{BufferStorage, DmaBuffer},
        DirectIo, EnqueuedSource, EnqueuedStatus, InnerSource, IoBuffer,
        PollableStatus, Source, SourceType, Statx, TimeSpec64,
    },
    uring_sys::{self, IoRingOp},
    GlommioError, IoRequirements, IoStats, ReactorErrorKind, RingIoStats, TaskQueueHandle,
};
use ahash::AHashMap;
use buddy_alloc::buddy_alloc::{BuddyAlloc, BuddyAllocParam};
use nix::sys::{
    socket::{MsgFlags, SockFlag},
    stat::Mode as OpenMode,
};
use smallvec::SmallVec;

use super::buf_ring::BufRing;

const MSG_ZEROCOPY: i32 = 0x4000000;

#[allow(dead_code)]
#[derive(Debug)]
enum UringOpDescriptor {
    PollAdd(PollFlags),
    PollRemove(*const u8),
    Cancel(u64),
    Write(*const u8, usize, u64),
    WriteFixed(*const u8, usize, u64, u32),
    ReadFixed(u64, usize),
    Read(u64, usize),
    Open(*const u8, libc::c_int, u32),
    Close,
    FDataSync,
    Connect(*const SockaddrStorage),
    LinkTimeout(*const uring_sys::__kernel_timespec),
    Accept(*mut SockAddrStorage),
    Fallocate(u64, u64, libc::c_int),
    Statx(*const u8, *mut Statx),
    Timeout(*const uring_sys::__kernel_timespec, u32),
    TimeoutRemove(u64),
    SockSend(*const u8, usize, i32),
    SockSendMsg(*mut libc::msghdr, i32),
    SockRecv(usize, i32),
    SockRecvMsg(usize, i32),
    /// percore: a multishot receive into buffer group `.0`.
    RecvMultishot(u16),
    /// percore: a send of `.1` bytes at `.0`, resolved within the
    /// `io_uring_enter` that submits it (see `Reactor::send_owned`).
    SendOwned(*const u8, usize),
    Nop,
}

#[derive(Debug)]
pub(crate) struct UringDescriptor {
    fd: RawFd,
    flags: SubmissionFlags,
    user_data: u64,
    args: UringOpDescriptor,
}

pub(crate) struct UringBufferAllocator {
    data: ptr::NonNull<u8>,
    size: usize,
    allocator: RefCell<BuddyAlloc>,
    layout: Layout,
    uring_buffer_id: Cell<Option<u32>>,
}

impl fmt::Debug for UringBufferAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringBufferAllocator")
            .field("data", &self.data)
            .finish()
    }
}

impl UringBufferAllocator {
    fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        let (data, allocator) = unsafe {
            let data = alloc::alloc::alloc(layout);
            let data = std::ptr::NonNull::new(data).unwrap();
            let allocator = BuddyAlloc::new(BuddyAllocParam::new(
                data.as_ptr(),
                layout.size(),
                layout.align(),
            ));
            (data, RefCell::new(allocator))
        };

        UringBufferAllocator {
            data,
            size,
            allocator,
            layout,
            uring_buffer_id: Cell::new(None),
        }
    }

    fn activate_registered_buffers(&self, idx: u32) {
        self.uring_buffer_id.set(Some(idx))
    }

    fn free(&self, ptr: ptr::NonNull<u8>) {
        let mut allocator = self.allocator.borrow_mut();
        allocator.free(ptr.as_ptr());
    }

    fn as_bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.size) }
    }

    fn new_buffer(self: &Rc<Self>, size: usize) -> Option<DmaBuffer> {
        let mut alloc = self.allocator.borrow_mut();
        match ptr::NonNull::new(alloc.malloc(size)) {
            Some(data) => {
                let ub = UringBuffer {
                    allocator: self.clone(),
                    data,
                    uring_buffer_id: self.uring_buffer_id.get(),
                };
                Some(DmaBuffer::with_storage(size, BufferStorage::Uring(ub)))
            }
            None => DmaBuffer::new(size),
        }
    }
}

impl Drop for UringBufferAllocator {
    fn drop(&mut self) {
        unsafe {
            alloc::alloc::dealloc(self.data.as_ptr(), self.layout);
        }
    }
}

pub(crate) struct UringBuffer {
    allocator: Rc<UringBufferAllocator>,
    data: ptr::NonNull<u8>,
    uring_buffer_id: Option<u32>,
}

impl fmt::Debug for UringBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringBuffer")
            .field("data", &self.data)
            .field("uring_buffer_id", &self.uring_buffer_id)
            .finish()
    }
}

impl UringBuffer {
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.data.as_ptr()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.data.as_ptr()
    }

    pub(crate) fn uring_buffer_id(&self) -> Option<u32> {
        self.uring_buffer_id
    }
}

impl Drop for UringBuffer {
    fn drop(&mut self) {
        let ptr = self.data;
        self.allocator.free(ptr);
    }
}

fn check_supported_operations(ops: &[uring_sys::IoRingOp]) -> bool {
    unsafe {
        let probe = uring_sys::io_uring_get_probe();
        if probe.is_null() {
            panic!(
                "Failed to register a probe. The most likely reason is that your kernel witnessed \
                 Romulus killing Remus (too old!! kernel should be at least 5.8)"
            );
        }

        let mut ret = true;
        for op in ops {
            let opint = *{ op as *const uring_sys::IoRingOp as *const libc::c_int };
            let sup = uring_sys::io_uring_opcode_supported(probe, opint) > 0;
            ret &= sup;
            if !sup {
                println!(
                    "Yo kernel is so old it was with Hannibal when he crossed the Alps! Missing \
                     {op:?}"
                );
            }
        }
        uring_sys::io_uring_free_probe(probe);
        if !ret {
            eprintln!("Your kernel is older than Caesar. Bye");
            std::process::exit(1);
        }
        ret
    }
}

static GLOMMIO_URING_OPS: &[IoRingOp] = &[
    IoRingOp::IORING_OP_NOP,
    IoRingOp::IORING_OP_READV,
    IoRingOp::IORING_OP_WRITEV,
    IoRingOp::IORING_OP_FSYNC,
    IoRingOp::IORING_OP_READ_FIXED,
    IoRingOp::IORING_OP_WRITE_FIXED,
    IoRingOp::IORING_OP_POLL_ADD,
    IoRingOp::IORING_OP_POLL_REMOVE,
    IoRingOp::IORING_OP_SENDMSG,
    IoRingOp::IORING_OP_RECVMSG,
    IoRingOp::IORING_OP_TIMEOUT,
    IoRingOp::IORING_OP_TIMEOUT_REMOVE,
    IoRingOp::IORING_OP_ACCEPT,
    IoRingOp::IORING_OP_LINK_TIMEOUT,
    IoRingOp::IORING_OP_CONNECT,
    IoRingOp::IORING_OP_FALLOCATE,
    IoRingOp::IORING_OP_OPENAT,
    IoRingOp::IORING_OP_CLOSE,
    IoRingOp::IORING_OP_STATX,
    IoRingOp::IORING_OP_READ,
    IoRingOp::IORING_OP_WRITE,
    IoRingOp::IORING_OP_SEND,
    IoRingOp::IORING_OP_RECV,
];

lazy_static! {
    static ref IO_URING_RECENT_ENOUGH: bool = check_supported_operations(GLOMMIO_URING_OPS);
}

fn fill_sqe<F>(
    sqe: &mut iou::SQE<'_>,
    op: &UringDescriptor,
    buffer_allocation: F,
    source_map: &mut SourceMap,
) where
    F: FnOnce(usize) -> Option<DmaBuffer>,
{
    let mut user_data = op.user_data;
    unsafe {
        match op.args {
            UringOpDescriptor::PollAdd(events) => {
                sqe.prep_poll_add(op.fd, events);
            }
            UringOpDescriptor::PollRemove(to_remove) => {
                user_data = 0;
                sqe.prep_poll_remove(to_remove as u64);
            }
            UringOpDescriptor::Cancel(to_remove) => {
                user_data = 0;
                sqe.prep_cancel(to_remove, 0);
            }
            UringOpDescriptor::Write(ptr, len, pos) => {
                let buf = std::slice::from_raw_parts(ptr, len);
                sqe.prep_write(op.fd, buf, pos);
            }
            UringOpDescriptor::Read(pos, len) => {
                source_map.peek_source_mut(from_user_data(op.user_data), |mut x| {
                    match &mut x.source_type {
                        SourceType::ForeignNotifier(result, _) => {
                            sqe.prep_read(op.fd, result, pos);
                        }
                        SourceType::Read(PollableStatus::NonPollable(DirectIo::Disabled), slot) => {
                            let mut buf = buffer_allocation(len).expect("Buffer allocation failed");
                            sqe.prep_read(op.fd, buf.as_bytes_mut(), pos);
                            // If you have a buffer here, that very likely means you are reusing the
                            // source. The kernel knows about that buffer already, and will write to
                            // it. So this can only be called if there is no buffer attached to it.
                            assert!(slot.is_none());
                            *slot = Some(IoBuffer::DmaSink(buf));
                        }
                        _ => unreachable!("Expected Read source type"),
                    }
                });
            }
            UringOpDescriptor::Open(path, flags, mode) => {
                let path = CStr::from_ptr(path as _);
                sqe.prep_openat(
                    op.fd,
                    path,
                    OFlag::from_bits_truncate(flags),
                    OpenMode::from_bits_truncate(mode),
                );
            }
            UringOpDescriptor::FDataSync => {
                sqe.prep_fsync(op.fd, FsyncFlags::FSYNC_DATASYNC);
            }
            UringOpDescriptor::Connect(addr) => {
                sqe.prep_connect(op.fd, &*addr);
            }

            UringOpDescriptor::LinkTimeout(timespec) => {
                sqe.prep_link_timeout(&*timespec);
            }

            UringOpDescriptor::Accept(addr) => {
                sqe.prep_accept(op.fd, Some(&mut *addr), SockFlag::SOCK_CLOEXEC);
            }

            UringOpDescriptor::Fallocate(offset, size, flags) => {
                let flags = FallocateFlags::from_bits_truncate(flags);
                sqe.prep_fallocate(op.fd, offset, size, flags);
            }
            UringOpDescriptor::Statx(path, statx_buf) => {
                let flags = StatxFlags::AT_STATX_SYNC_AS_STAT | StatxFlags::AT_NO_AUTOMOUNT;
                let mode = StatxMode::from_bits_truncate(0x7ff);

                let path = CStr::from_ptr(path as _);
                sqe.prep_statx(-1, path, flags, mode, &mut *statx_buf);
            }
            UringOpDescriptor::Timeout(timespec, events) => {
                sqe.prep_timeout(&*timespec, events, TimeoutFlags::empty());
            }
            UringOpDescriptor::TimeoutRemove(timer) => {
                sqe.prep_timeout_remove(timer as _);
            }
            UringOpDescriptor::Close => {
                sqe.prep_close(op.fd);
            }
            UringOpDescriptor::ReadFixed(pos, len) => {
                let mut buf = buffer_allocation(len).expect("Buffer allocation failed");
                source_map.peek_source_mut(from_user_data(op.user_data), |mut src| {
                    match &mut src.source_type {
                        SourceType::Read(PollableStatus::NonPollable(DirectIo::Disabled), slot) => {
                            sqe.prep_read(op.fd, buf.as_bytes_mut(), pos);
                            *slot = Some(IoBuffer::DmaSink(buf));
                        }
                        SourceType::Read(_, slot) => {
                            match buf.uring_buffer_id() {
                                None => {
                                    sqe.prep_read(op.fd, buf.as_bytes_mut(), pos);
                                }
                                Some(idx) => {
                                    sqe.prep_read_fixed(op.fd, buf.as_bytes_mut(), pos, idx);
                                }
                            };
                            *slot = Some(IoBuffer::DmaSink(buf));
                        }
                        _ => unreachable!(),
                    };
                });
            }

            UringOpDescriptor::WriteFixed(ptr, len, pos, buf_index) => {
                let buf = std::slice::from_raw_parts(ptr, len);
                sqe.prep_write_fixed(op.fd, buf, pos, buf_index as _);
            }

            UringOpDescriptor::SockSend(ptr, len, flags) => {
                let buf = std::slice::from_raw_parts(ptr, len);
                sqe.prep_send(op.fd, buf, MsgFlags::from_bits_retain(flags | MSG_ZEROCOPY));
            }

            UringOpDescriptor::SockSendMsg(hdr, flags) => {
                sqe.prep_sendmsg(op.fd, hdr, MsgFlags::from_bits_retain(flags | MSG_ZEROCOPY));
            }

            UringOpDescriptor::SockRecv(len, flags) => {
                let mut buf = DmaBuffer::new(len).expect("failed to allocate buffer");
                sqe.prep_recv(op.fd, buf.as_bytes_mut(), MsgFlags::from_bits_retain(flags));

                source_map.peek_source_mut(from_user_data(op.user_data), |mut src| {
                    match &mut src.source_type {
                        SourceType::SockRecv(slot) => {
                            *slot = Some(buf);
                        }
                        _ => unreachable!(),
                    };
                });
            }

            UringOpDescriptor::SockRecvMsg(len, flags) => {
                let mut buf = DmaBuffer::new(len).expect("failed to allocate buffer");
                source_map.peek_source_mut(from_user_data(op.user_data), |mut src| {
                    match &mut src.source_type {
                        SourceType::SockRecvMsg(state) => {
                            let (slot, iov, hdr, msg_name) = &mut **state;
                            iov.iov_base = buf.as_mut_ptr() as *mut libc::c_void;
                            iov.iov_len = len;

                            let msg_namelen =
                                std::mem::size_of::<nix::sys::socket::sockaddr_storage>()
                                    as libc::socklen_t;
                            hdr.msg_name = msg_name.as_mut_ptr() as *mut libc::c_void;
                            hdr.msg_namelen = msg_namelen;
                            hdr.msg_iov = iov as *mut libc::iovec;
                            hdr.msg_iovlen = 1;

                            sqe.prep_recvmsg(
                                op.fd,
                                hdr as *mut libc::msghdr,
                                MsgFlags::from_bits_retain(flags),
                            );
                            *slot = Some(buf);
                        }
                        _ => unreachable!(),
                    };
                });
            }
            UringOpDescriptor::SendOwned(ptr, len) => {
                // `MSG_DONTWAIT` makes io_uring fail the send with `EAGAIN`
                // rather than wait for room (`REQ_F_NOWAIT`), and
                // `MSG_WAITALL` makes a short send a failure that reports
                // the bytes sent: either way a completion is posted, so
                // `IOSQE_CQE_SKIP_SUCCESS` leaves none only for a send that
                // went out whole, inline, before the call that submitted it
                // returned.
                let buf = std::slice::from_raw_parts(ptr, len);
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_WAITALL | MsgFlags::MSG_NOSIGNAL;
                sqe.prep_send(op.fd, buf, flags);
                sqe.raw_mut().flags |= IOSQE_CQE_SKIP_SUCCESS;
            }
            UringOpDescriptor::RecvMultishot(group) => {
                // A receive with no buffer of its own (`IOSQE_BUFFER_SELECT`;
                // `set_flags` below adds the descriptor's flags to it) and
                // length 0, which the kernel requires of `IORING_RECV_MULTISHOT`.
                sqe.prep_recv(op.fd, &mut [], MsgFlags::empty());
                sqe.set_flags(SubmissionFlags::BUFFER_SELECT);
                let raw = sqe.raw_mut();
                raw.addr = 0;
                raw.len = 0;
                raw.ioprio |= IORING_RECV_MULTISHOT;
                raw.buf_index.buf_index.index_or_group = group;
            }
            UringOpDescriptor::Nop => sqe.prep_nop(),
        }
        sqe.set_user_data(user_data);
        sqe.set_flags(op.flags);
    }
}

/// `IOSQE_CQE_SKIP_SUCCESS` (Linux 5.17): no completion unless it fails.
const IOSQE_CQE_SKIP_SUCCESS: u8 = 1 << 6;
/// `IORING_RECV_MULTISHOT` (`sqe->ioprio` of a receive, Linux 6.0).
const IORING_RECV_MULTISHOT: u16 = 1 << 1;
/// `IORING_CQE_F_BUFFER`: the completion names a provided buffer in its
/// upper 16 flag bits.
const IORING_CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: the multishot operation stays armed.
const IORING_CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_BUFFER_SHIFT`.
const IORING_CQE_BUFFER_SHIFT: u32 = 16;

/// percore: one completion of a multishot receive. Its data, end of
/// stream or error is queued in the source for the stream to read; while
/// `F_MORE` is set the source stays in the map, armed. Returns whether a
/// task was woken and whether the operation ended.
fn process_multishot(
    cqe: &iou::CQE,
    id: SourceId,
    source_map: &RefCell<SourceMap>,
    buffers: Option<&BufRing>,
) -> (bool, bool) {
    let flags = cqe.raw_flags();
    let more = flags & IORING_CQE_F_MORE != 0;
    let src = if more {
        source_map.borrow()[id].clone()
    } else {
        source_map.borrow_mut().consume_source(id)
    };
    let res = cqe.raw_result();
    let mut woke = false;
    {
        let mut inner = src.borrow_mut();
        let InnerSource {
            source_type,
            wakers,
            ..
        } = &mut *inner;
        if let SourceType::RecvMultishot(state) = source_type {
            let mut bid = None;
            if flags & IORING_CQE_F_BUFFER != 0 {
                let id = (flags >> IORING_CQE_BUFFER_SHIFT) as u16;
                if let Some(buffers) = buffers {
                    buffers.note_taken();
                }
                // Only data keeps its buffer; an empty one goes back now.
                if res > 0 && !state.abandoned {
                    bid = Some(id);
                } else if let Some(buffers) = buffers {
                    buffers.recycle(id);
                }
            }
            if !state.abandoned {
                match bid {
                    Some(bid) => state.ready.push_back((res, bid)),
                    None if res <= 0 => state.ready.push_back((res, 0)),
                    // Bytes without a buffer cannot happen: drop nothing
                    // silently, report it as an I/O error.
                    None => state.ready.push_back((-libc::EIO, 0)),
                }
                if !more {
                    state.ended = true;
                }
                woke = wakers.wake_waiters();
            }
        }
    }
    if !more {
        super::source::recycle(&src);
    }
    (woke, !more)
}

fn transmute_error(res: io::Result<u32>) -> io::Result<usize> {
    res.map(|x| x as usize) // iou standardized on u32, which is good for low level but for higher layers usize is
        // better
        .map_err(|x| {
            // Convert CANCELED to TimedOut. This will be the case for linked `sqe`s with a
            // timeout, and if we wanted to be really strict we'd check. But if
            // the operation is truly cancelled no one will check the result,
            // and we have no other use case for cancel at the moment so keep it simple
            if let Some(libc::ECANCELED) = x.raw_os_error() {
                io::Error::from_raw_os_error(libc::ETIMEDOUT)
            } else {
                x
            }
        })
}

fn record_stats<Ring: UringCommon>(
    ring: &mut Ring,
    src: &mut InnerSource,
    res: &io::Result<usize>,
) {
    if src.records_latency() {
        src.wakers.times_mut().fulfilled_at = Some(Instant::now());
    }
    if let Some(fulfilled) = src.stats_collection.and_then(|x| x.fulfilled) {
        fulfilled(res, ring.io_stats_mut(), 1);
        if let Some(handle) = src.task_queue {
            fulfilled(res, ring.io_stats_for_task_queue_mut(handle), 1);
        }
    }

    let waiters = usize::saturating_sub(src.wakers.waiters.len(), 1);
    if waiters > 0 {
        if let Some(reused) = src.stats_collection.and_then(|x| x.reused) {
            reused(res, ring.io_stats_mut(), waiters as u64);
            if let Some(handle) = src.task_queue {
                reused(
                    res,
                    ring.io_stats_for_task_queue_mut(handle),
                    waiters as u64,
                );
            }
        }
    }
}

// Find the next complete chain of events from the queue
// Returns None if the queue is empty.
fn peek_one_chain(queue: &VecDeque<UringDescriptor>, ring_size: usize) -> Option<Range<usize>> {
    if queue.is_empty() {
        return None;
    }
    let chain = queue
        .iter()
        .take(ring_size)
        .position(|sqe| {
            !sqe.flags
                .intersects(SubmissionFlags::IO_LINK | SubmissionFlags::IO_HARDLINK)
        })
        .expect("Unterminated SQE link chain or submission queue overflow");
    Some(0..chain + 1)
}

// Extract a chain of events from the queue.
// The chain be empty if the sources were cancelled
fn extract_one_chain(
    source_map: &mut SourceMap,
    queue: &mut VecDeque<UringDescriptor>,
    chain: Range<usize>,
    now: &mut Option<Instant>,
) -> SmallVec<[UringDescriptor; 2]> {
    // percore: 2 inline, not 1: linked pairs (the throughput timer and its
    // eventfd write, an operation and its link timeout) spilled to the heap.
    queue
        .drain(chain)
        .filter(move |op| {
            if op.user_data > 0 {
                let id = from_user_data(op.user_data);
                let status = source_map.peek_source_mut(from_user_data(op.user_data), |mut x| {
                    // percore: the clock is read once per submission, and
                    // only for a source that records latencies.
                    if x.records_latency() {
                        x.wakers.times_mut().submitted_at = Some(*now.get_or_insert_with(Instant::now));
                    }
                    let current = x.enqueued.as_mut().expect("bug");
                    match current.status {
                        EnqueuedStatus::Enqueued => {
                            current.status = EnqueuedStatus::Dispatched;
                            EnqueuedStatus::Dispatched
                        }
                        EnqueuedStatus::Canceled => EnqueuedStatus::Canceled,
                        _ => unreachable!(),
                    }
                });
                if status == EnqueuedStatus::Canceled {
                    // percore: dropped before it was submitted; reuse it.
                    super::source::recycle(&source_map.consume_source(id));
                    return false;
                }
            }
            true
        })
        .collect()
}

/// Processes one completion; returns whether a task was woken and whether
/// its operation left the kernel (a multishot one may stay).
fn process_one_event<F, R>(
    cqe: Option<iou::CQE>,
    try_process: F,
    post_process: R,
    source_map: Rc<RefCell<SourceMap>>,
    buffers: Option<&BufRing>,
) -> Option<(bool, bool)>
where
    F: FnOnce(Ref<'_, InnerSource>) -> Option<()>,
    R: FnOnce(RefMut<'_, InnerSource>, io::Result<usize>) -> io::Result<usize>,
{
    if let Some(value) = cqe {
        // No user data is `POLL_REMOVE` or `CANCEL`, we won't process.
        if value.user_data() == 0 {
            return Some((false, true));
        }

        let id = from_user_data(value.user_data());
        let multishot = matches!(
            source_map.borrow()[id].borrow().source_type,
            SourceType::RecvMultishot(_)
        );
        if multishot {
            return Some(process_multishot(&value, id, &source_map, buffers));
        }

        let src = source_map
            .borrow_mut()
            .consume_source(from_user_data(value.user_data()));

        let result = value.result();

        let mut woke = false;
        if try_process(src.borrow()).is_none() {
            let res = Some(post_process(src.borrow_mut(), transmute_error(result)));
            let mut inner_source = src.borrow_mut();
            inner_source.wakers.result = res;
            woke = inner_source.wakers.wake_waiters();
        }
        // percore: a source whose handle was dropped while in flight ends here.
        super::source::recycle(&src);
        return Some((woke, true));
    }
    None
}

type SourceMap = FreeList<Pin<Rc<RefCell<InnerSource>>>>;
pub(crate) type SourceId = Idx<Pin<Rc<RefCell<InnerSource>>>>;
fn from_user_data(user_data: u64) -> SourceId {
    SourceId::from_raw((user_data - 1) as usize)
}
fn to_user_data(id: SourceId) -> u64 {
    id.to_raw() as u64 + 1
}

impl SourceMap {
    fn add_source(&mut self, source: &Source, queue: ReactorQueue) -> SourceId {
        let item = source.inner.clone();
        let id = self.alloc(item);
        let status = EnqueuedStatus::Enqueued;
        source
            .inner
            .borrow_mut()
            .enqueued
            .replace(EnqueuedSource { id, queue, status });
        id
    }

    fn peek_source_mut<R, Fn: for<'a> FnOnce(RefMut<'a, InnerSource>) -> R>(
        &mut self,
        id: SourceId,
        f: Fn,
    ) -> R {
        f(self[id].borrow_mut())
    }

    fn consume_source(&mut self, id: SourceId) -> Pin<Rc<RefCell<InnerSource>>> {
        let source = self.dealloc(id);
        source.borrow_mut().enqueued.take();
        source
    }
}

#[derive(Debug)]
pub(crate) struct UringQueueState {
    submissions: VecDeque<UringDescriptor>,
    cancellations: VecDeque<UringDescriptor>,
}

pub(crate) type ReactorQueue = Rc<RefCell<UringQueueState>>;

impl UringQueueState {
    fn with_capacity(cap: usize) -> ReactorQueue {
        Rc::new(RefCell::new(UringQueueState {
            submissions: VecDeque::with_capacity(cap),
            cancellations: VecDeque::new(),
        }))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.submissions.is_empty() && self.cancellations.is_empty()
    }

    pub(crate) fn cancel_request(&mut self, id: SourceId) {
        self.cancellations.push_back(UringDescriptor {
            args: UringOpDescriptor::Cancel(to_user_data(id)),
            fd: -1,
            flags: SubmissionFlags::empty(),
            user_data: 0,
        });
    }
}

pub(crate) trait UringCommon {
    fn submission_queue(&mut self) -> ReactorQueue;
    fn submit_sqes(&mut self) -> io::Result<usize>;
    fn waiting_kernel_submission(&self) -> usize;
    #[allow(dead_code)]
    fn in_kernel(&self) -> usize;
    fn waiting_kernel_collection(&self) -> usize;
    fn needs_kernel_enter(&self) -> bool;
    fn can_sleep(&self) -> bool;
    /// None if it wasn't possible to acquire an `sqe`. `Some(true)` if it was
    /// possible and there was something to dispatch. `Some(false)` if there
    /// was nothing to dispatch
    fn submit_one_event(&mut self, queue: &mut VecDeque<UringDescriptor>) -> Option<bool>;
    /// Return `None` if no event is completed, `Some(true)` for a task is woken
    /// up and `Some(false)` for not.
    fn consume_one_event(&mut self) -> Option<bool>;
    fn name(&self) -> &'static str;
    fn io_stats_mut(&mut self) -> &mut RingIoStats;
    fn io_stats_for_task_queue_mut(&mut self, handle: TaskQueueHandle) -> &mut RingIoStats;
    fn registrar(&self) -> iou::Registrar<'_>;
    fn may_rush(&self) -> bool {
        true
    }

    fn consume_sqe_queue(
        &mut self,
        queue: &mut VecDeque<UringDescriptor>,
        mut dispatch: bool,
    ) -> io::Result<usize> {
        loop {
            match self.submit_one_event(queue) {
                None => {
                    dispatch = true;
                    break;
                }
                Some(true) => {}
                Some(false) => break,
            }
        }

        if dispatch && self.needs_kernel_enter() {
            self.submit_sqes()
        } else {
            Ok(0)
        }
    }

    /// We will not dispatch the cancellation queue unless we need to.
    /// Dispatches will come from the submission queue.
    fn consume_cancellation_queue(&mut self) -> io::Result<usize> {
        let q = self.submission_queue();
        let mut queue = q.borrow_mut();
        self.consume_sqe_queue(&mut queue.cancellations, false)
    }

    fn consume_submission_queue(&mut self) -> io::Result<usize> {
        let q = self.submission_queue();
        let mut queue = q.borrow_mut();
        self.consume_sqe_queue(&mut queue.submissions, true)
    }

    fn consume_completion_queue(&mut self, woke: &mut usize) -> usize {
        let mut completed = 0;
        loop {
            match self.consume_one_event() {
                None => break,
                Some(false) => completed += 1,
                Some(true) => {
                    completed += 1;
                    *woke += 1;
                }
            }
        }
        completed + self.resolve_owned_sends(woke)
    }

    /// percore: resolves the owned sends that completed without a
    /// completion (see `SleepableRing`); returns how many.
    fn resolve_owned_sends(&mut self, _woke: &mut usize) -> usize {
        0
    }

    /// It is important to process cancellations as soon as we see them,
    /// which is why they go into a separate queue. The reason is that
    /// cancellations can be racy if they are left to their own devices.
    ///
    /// Imagine that you have a write request to fd 3 and wants to cancel it.
    /// But before the cancellation is run fd 3 gets closed and another file
    /// is opened with the same fd.
    fn flush_cancellations(&mut self, woke: &mut usize) {
        let mut cnt = 0;
        loop {
            if self.consume_cancellation_queue().is_ok() {
                break;
            }
            self.consume_completion_queue(woke);
            cnt += 1;
            if cnt > 1_000_000 {
                panic!(
                    "i tried literally a million times but couldn't flush to the {} ring",
                    self.name()
                );
            }
        }
        self.consume_completion_queue(woke);
    }

    fn poll(&mut self, woke: &mut usize) -> io::Result<()> {
        self.consume_cancellation_queue()
            .or_else(Reactor::busy_ok)
            .or_else(Reactor::again_ok)
            .or_else(Reactor::intr_ok)?;
        self.consume_submission_queue()
            .or_else(Reactor::busy_ok)
            .or_else(Reactor::again_ok)
            .or_else(Reactor::intr_ok)?;
        self.consume_completion_queue(woke);
        Ok(())
    }
}

struct PollRing {
    ring: iou::IoUring,
    size: usize,
    submission_queue: ReactorQueue,
    allocator: Rc<UringBufferAllocator>,
    stats: RingIoStats,
    task_queue_stats: AHashMap<TaskQueueHandle, RingIoStats>,
    source_map: Rc<RefCell<SourceMap>>,
    in_kernel: usize,
}

impl PollRing {
    fn new(
        size: usize,
        allocator: Rc<UringBufferAllocator>,
        source_map: Rc<RefCell<SourceMap>>,
    ) -> io::Result<Self> {
        let ring = iou::IoUring::new_with_flags(
            size as _,
            iou::SetupFlags::IOPOLL,
            iou::SetupFeatures::empty(),
        )?;
        Ok(PollRing {
            size,
            ring,
            submission_queue: UringQueueState::with_capacity(size * 4),
            allocator,
            stats: RingIoStats::default(),
            task_queue_stats: AHashMap::new(),
            source_map,
            in_kernel: 0,
        })
    }

    pub(crate) fn alloc_dma_buffer(&mut self, size: usize) -> DmaBuffer {
        self.allocator.new_buffer(size).unwrap()
    }
}

impl UringCommon for PollRing {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn io_stats_mut(&mut self) -> &mut RingIoStats {
        &mut self.stats
    }

    fn io_stats_for_task_queue_mut(&mut self, handle: TaskQueueHandle) -> &mut RingIoStats {
        self.task_queue_stats.entry(handle).or_default()
    }

    fn registrar(&self) -> iou::Registrar<'_> {
        self.ring.registrar()
    }

    fn needs_kernel_enter(&self) -> bool {
        // We need to enter the kernel to submit and collect CQEs so if the number of
        // submitted requests doesn't match the number of request we collected, we need
        // to poll.
        self.in_kernel > 0 || self.waiting_kernel_submission() > 0
    }

    fn can_sleep(&self) -> bool {
        self.submission_queue.borrow().is_empty() && !self.needs_kernel_enter()
    }

    fn waiting_kernel_submission(&self) -> usize {
        self.ring.sq().ready() as usize
    }

    fn in_kernel(&self) -> usize {
        self.in_kernel
    }

    fn waiting_kernel_collection(&self) -> usize {
        self.ring.cq().ready() as usize
    }

    fn submission_queue(&mut self) -> ReactorQueue {
        self.submission_queue.clone()
    }

    fn submit_sqes(&mut self) -> io::Result<usize> {
        let x = self.ring.submit_sqes()? as usize;
        self.in_kernel += x;
        Ok(x)
    }

    fn consume_one_event(&mut self) -> Option<bool> {
        let source_map = self.source_map.clone();
        process_one_event(
            self.ring.peek_for_cqe(),
            |_| None,
            |mut src, res| {
                record_stats(self, &mut src, &res);
                res
            },
            source_map,
            None,
        )
        .map(|(woke, done)| {
            if done {
                self.in_kernel -= 1;
            }
            woke
        })
    }

    fn submit_one_event(&mut self, queue: &mut VecDeque<UringDescriptor>) -> Option<bool> {
        // percore: nothing to submit (most calls: every ring's queues are
        // polled several times a turn): no clock read.
        if queue.is_empty() {
            return Some(false);
        }
        let source_map = &mut *self.source_map.borrow_mut();
        let mut now = None;

        while let Some(chain) = peek_one_chain(queue, self.size) {
            return if let Some(sqes) = self.ring.sq().prepare_sqes(chain.len() as u32) {
                let ops = extract_one_chain(source_map, queue, chain, &mut now);
                if ops.is_empty() {
                    // all the sources in the ring were cancelled
                    continue;
                }

                for (op, mut sqe) in ops.into_iter().zip(sqes.into_iter()) {
                    let allocator = self.allocator.clone();
                    fill_sqe(
                        &mut sqe,
                        &op,
                        move |size| allocator.new_buffer(size),
                        source_map,
                    );
                }
                Some(true)
            } else {
                None
            };
        }
        Some(false)
    }
}

struct SleepableRing {
    ring: iou::IoUring,
    size: usize,
    submission_queue: ReactorQueue,
    name: &'static str,
    allocator: Rc<UringBufferAllocator>,
    stats: RingIoStats,
    task_queue_stats: AHashMap<TaskQueueHandle, RingIoStats>,
    source_map: Rc<RefCell<SourceMap>>,
    in_kernel: usize,
    /// Set up with `DEFER_TASKRUN` (see `setup_main`).
    defer_taskrun: bool,
    /// percore: the provided buffers of multishot receives, once registered
    /// (`Reactor::enable_recv_multishot`). After `ring`, so it is freed only
    /// once the ring is closed.
    buf_ring: Option<Rc<BufRing>>,
    /// percore: owned sends placed in the submission ring and not resolved
    /// yet (see `resolve_owned_sends`). Their sources, not their ids: an id
    /// is reused as soon as a failed send's completion frees it.
    owned_sends: Vec<Pin<Rc<RefCell<InnerSource>>>>,
}

impl SleepableRing {
    fn new(
        size: usize,
        name: &'static str,
        allocator: Rc<UringBufferAllocator>,
        source_map: Rc<RefCell<SourceMap>>,
        defer_taskrun: bool,
    ) -> io::Result<Self> {
        assert!(*IO_URING_RECENT_ENOUGH);
        let (ring, defer_taskrun) = if name == "main" {
            Self::setup_main(size, defer_taskrun)?
        } else {
            (iou::IoUring::new(size as _)?, false)
        };
        Ok(SleepableRing {
            ring,
            size,
            submission_queue: UringQueueState::with_capacity(size * 4),
            name,
            allocator,
            stats: RingIoStats::default(),
            task_queue_stats: AHashMap::new(),
            source_map,
            in_kernel: 0,
            defer_taskrun,
            buf_ring: None,
            owned_sends: Vec::new(),
        })
    }

    /// The main ring: `SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG` (Linux
    /// 6.1) when asked for, else `COOP_TASKRUN` (5.19), else the default.
    /// Returns whether `DEFER_TASKRUN` is in effect.
    ///
    /// `COOP_TASKRUN`: completions are not pushed to a running thread with an
    /// IPI and a forced kernel entry; they run at the thread's next
    /// `io_uring_enter`. `DEFER_TASKRUN` goes further: they run only when this
    /// thread enters with `IORING_ENTER_GETEVENTS`, in one batch, and a sleeping
    /// `io_uring_enter` is woken only once enough of them are queued to meet
    /// its `min_complete`. So the ring must be entered to reap: with
    /// `TASKRUN_FLAG` the kernel sets `IORING_SQ_TASKRUN` while work waits,
    /// and the vendored liburing then enters with GETEVENTS from a peek that
    /// finds the completion queue empty and from every submission (as
    /// upstream liburing >= 2.3 does); the call that sleeps (`sleep`) enters
    /// with GETEVENTS and `min_complete` 1 anyway. `SINGLE_ISSUER` (required
    /// by `DEFER_TASKRUN`) holds: the ring is created on the executor's thread
    /// (the reactor is `!Send`) and only that thread enters it; the kernel
    /// binds the ring to its creator at setup, so `R_DISABLED` is not needed.
    /// The latency ring keeps the default: its timeouts drive preemption and
    /// must land while tasks run. Kernels that refuse a flag (EINVAL) get the
    /// next setup down.
    fn setup_main(size: usize, defer_taskrun: bool) -> io::Result<(iou::IoUring, bool)> {
        if defer_taskrun {
            if let Ok(ring) = iou::IoUring::new_with_flags(
                size as _,
                iou::SetupFlags::SINGLE_ISSUER
                    | iou::SetupFlags::DEFER_TASKRUN
                    | iou::SetupFlags::TASKRUN_FLAG,
                iou::SetupFeatures::empty(),
            ) {
                return Ok((ring, true));
            }
        }
        let ring = iou::IoUring::new_with_flags(
            size as _,
            iou::SetupFlags::COOP_TASKRUN,
            iou::SetupFeatures::empty(),
        )
        .or_else(|_| iou::IoUring::new(size as _))?;
        Ok((ring, false))
    }

    fn ring_fd(&self) -> RawFd {
        self.ring.raw().ring_fd
    }

    /// This function prepares a timer that fires unconditionally after a
    /// certain duration. The timer is added at the front of the queue such
    /// that it will be the first SQE submitted the next time we enter the
    /// latency ring
    fn prepare_latency_preemption_timer(&mut self, d: Duration) -> Source {
        let source = Source::new(
            IoRequirements::default(),
            -1,
            SourceType::Timeout(TimeSpec64::try_from(d).unwrap(), 0),
            None,
            None,
        );
        let op = match &*source.source_type() {
            SourceType::Timeout(ts, events) => {
                UringOpDescriptor::Timeout(&ts.raw as *const _, *events)
            }
            _ => unreachable!(),
        };

        self.submission_queue()
            .borrow_mut()
            .submissions
            .push_front(UringDescriptor {
                args: op,
                fd: -1,
                flags: SubmissionFlags::empty(),
                user_data: to_user_data(
                    self.source_map
                        .borrow_mut()
                        .add_source(&source, self.submission_queue.clone()),
                ),
            });
        source
    }

    /// This function prepares a timer that fires only after a given number of
    /// CQEs are available on the main ring. This timer is linked with a write
    /// to the latency ring's event fd such that this timer triggers a
    /// preemption via the latency ring.
    fn prepare_throughput_preemption_timer(&mut self, min_events: u32, event_fd: RawFd) -> Source {
        assert!(min_events >= 1, "min_events should be at least 1");
        let timer_source = Source::new(
            IoRequirements::default(),
            -1,
            SourceType::Timeout(TimeSpec64::MAX, min_events),
            None,
            None,
        );

        const EVENTFD_WAKEUP: &[u64; 1] = &[1u64; 1];
        let write_op = UringDescriptor {
            fd: event_fd,
            flags: SubmissionFlags::empty(),
            user_data: 0,
            args: UringOpDescriptor::Write(EVENTFD_WAKEUP as *const u64 as _, 8, 0),
        };

        let op = match &*timer_source.source_type() {
            SourceType::Timeout(ts, events) => {
                UringOpDescriptor::Timeout(&ts.raw as *const _, *events)
            }
            _ => unreachable!(),
        };
        let queue = self.submission_queue();
        queue.borrow_mut().submissions.push_front(write_op);
        queue.borrow_mut().submissions.push_front(UringDescriptor {
            args: op,
            fd: -1,
            flags: SubmissionFlags::IO_LINK,
            user_data: to_user_data(
                self.source_map
                    .borrow_mut()
                    .add_source(&timer_source, queue.clone()),
            ),
        });
        timer_source
    }

    fn install_eventfd(&mut self, eventfd_src: &Source) -> bool {
        if let Some(mut sqe) = self.ring.sq().prepare_sqe() {
            // Now must wait on the `eventfd` in case someone wants to wake us up.
            // If we can't then we can't sleep and will just bail immediately
            let op = UringDescriptor {
                fd: eventfd_src.raw(),
                flags: SubmissionFlags::empty(),
                user_data: to_user_data(
                    self.source_map
                        .borrow_mut()
                        .add_source(eventfd_src, self.submission_queue.clone()),
                ),
                args: UringOpDescriptor::Read(0, 8),
            };

            let buffer_ptr = {
                match &mut *eventfd_src.source_type_mut() {
                    SourceType::ForeignNotifier(result, _) => result as *mut _ as _,
                    _ => unreachable!("Expected ForeignNotifier source type"),
                }
            };

            fill_sqe(
                &mut sqe,
                &op,
                |size| {
                    Some(DmaBuffer::with_storage(
                        size,
                        BufferStorage::EventFd(buffer_ptr),
                    ))
                },
                &mut self.source_map.borrow_mut(),
            );

            match &mut *eventfd_src.source_type_mut() {
                SourceType::ForeignNotifier(_, installed) => {
                    *installed = self.submit_sqes().is_ok();
                    *installed
                }
                _ => unreachable!("Expected ForeignNotifier source type"),
            }
        } else {
            false
        }
    }

    /// Places the queued submissions in the submission ring without entering
    /// the kernel (unless the ring is full): the call that sleeps submits them.
    fn prepare_submissions(&mut self) -> io::Result<usize> {
        let q = self.submission_queue();
        let mut queue = q.borrow_mut();
        self.consume_sqe_queue(&mut queue.submissions, false)
    }

    /// `DEFER_TASKRUN`: has the kernel queued completions for this ring that
    /// only an `io_uring_enter` with GETEVENTS posts (`IORING_SQ_TASKRUN`)?
    /// One load from the shared SQ ring, no system call.
    fn taskrun_pending(&self) -> bool {
        if !self.defer_taskrun {
            return false;
        }
        // SAFETY: `kflags` points into the SQ ring mapped for as long as the
        // ring lives; the kernel updates it atomically (`atomic_or`).
        let flags = unsafe {
            (*(self.ring.raw().sq.kflags as *const std::sync::atomic::AtomicU32))
                .load(std::sync::atomic::Ordering::Acquire)
        };
        flags & crate::uring_sys::IORING_SQ_TASKRUN != 0
    }

    /// `DEFER_TASKRUN`: posts and consumes the completions the kernel holds
    /// for this ring, with one `io_uring_enter(0, 0, GETEVENTS)`, if it holds
    /// any (`taskrun_pending`); else costs one load. Returns the completions
    /// consumed.
    fn reap_deferred(&mut self, woke: &mut usize) -> usize {
        if !self.taskrun_pending() {
            return 0;
        }
        // SAFETY: entering our own ring with nothing to submit; errors
        // (EINTR, EAGAIN, EBUSY) leave the work queued and the flag set, for
        // the next turn or the call that sleeps.
        unsafe {
            crate::uring_sys::syscalls::io_uring_enter(
                self.ring_fd(),
                0,
                0,
                crate::uring_sys::IORING_ENTER_GETEVENTS,
                std::ptr::null(),
            );
        }
        self.consume_completion_queue(woke)
    }

    /// `DEFER_TASKRUN`: `reap_deferred` folded into the submission of what
    /// waits in the submission ring, if anything does: one `io_uring_enter`
    /// (the vendored liburing asks for GETEVENTS while `IORING_SQ_TASKRUN`
    /// is set) where a reap and then a submission took two. One load when
    /// the kernel holds nothing.
    fn submit_and_reap(&mut self, woke: &mut usize) -> io::Result<()> {
        if !self.taskrun_pending() {
            return Ok(());
        }
        if self.waiting_kernel_submission() == 0 {
            self.reap_deferred(woke);
            return Ok(());
        }
        self.submit_sqes()
            .or_else(Reactor::busy_ok)
            .or_else(Reactor::again_ok)
            .or_else(Reactor::intr_ok)?;
        self.consume_completion_queue(woke);
        Ok(())
    }

    /// Are cancellations waiting to be placed in the submission ring?
    fn cancellations_pending(&self) -> bool {
        !self.submission_queue.borrow().cancellations.is_empty()
    }

    /// Like `can_sleep`, but entries already in the submission ring are fine:
    /// `sleep` submits them in the call that waits.
    fn can_sleep_submitting(&self) -> bool {
        self.submission_queue.borrow().is_empty() && self.waiting_kernel_collection() == 0
    }

    /// Submits what waits in the submission ring and sleeps until a
    /// completion. With `link`, arms it first (a `POLL_ADD` on the latency
    /// ring's fd); without, a link armed by an earlier sleep is still in the
    /// kernel. Returns whether `link` is now armed in the kernel.
    fn sleep(&mut self, link: Option<&Source>) -> io::Result<bool> {
        let Some(link) = link else {
            // The kernel waits only if it consumed every entry (see below);
            // if not, we did not sleep, and the rest is submitted later.
            let submitted = self
                .ring
                .submit_sqes_and_wait(1)
                .map(|x| x as usize)
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
            self.in_kernel += submitted;
            return Ok(false);
        };
        if let Some(mut sqe) = self.ring.sq().prepare_sqe() {
            let sqe_ptr = unsafe { sqe.raw_mut() as *mut _ };
            let op = UringDescriptor {
                fd: link.raw(),
                flags: SubmissionFlags::empty(),
                user_data: to_user_data(
                    self.source_map
                        .borrow_mut()
                        .add_source(link, self.submission_queue.clone()),
                ),
                args: UringOpDescriptor::PollAdd(common_flags() | read_flags()),
            };
            fill_sqe(
                &mut sqe,
                &op,
                DmaBuffer::new,
                &mut self.source_map.borrow_mut(),
            );

            // (A) One `io_uring_enter` submits every entry waiting in the
            // submission ring, the ring link last, and waits for one
            // completion (upstream submitted the link alone, then waited: two
            // calls, after the main ring's own flush: three). The kernel waits
            // only if it consumed every entry (`io_uring_enter`:
            // `if (ret != to_submit) goto out`). If the link was not consumed
            // we did not sleep; it is made a no-op, as upstream did when the
            // link alone failed to submit.
            let to_submit = self.waiting_kernel_submission();
            let submitted = self
                .ring
                .submit_sqes_and_wait(1)
                .map(|x| x as usize)
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
            self.in_kernel += submitted;
            if submitted == to_submit {
                Ok(true)
            } else {
                unsafe { crate::uring_sys::io_uring_prep_nop(sqe_ptr) };
                Ok(false)
            }
        } else {
            // Can't link rings because we ran out of `CQE`s. Just can't sleep.
            // Submit what we have, once we're out of here we'll consume them
            // and at some point will be able to sleep again.
            self.submit_sqes()
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)
                .map(|_| false)
        }
    }
}

impl UringCommon for SleepableRing {
    fn name(&self) -> &'static str {
        self.name
    }

    fn io_stats_mut(&mut self) -> &mut RingIoStats {
        &mut self.stats
    }

    fn io_stats_for_task_queue_mut(&mut self, handle: TaskQueueHandle) -> &mut RingIoStats {
        self.task_queue_stats.entry(handle).or_default()
    }

    fn registrar(&self) -> iou::Registrar<'_> {
        self.ring.registrar()
    }

    fn may_rush(&self) -> bool {
        false
    }

    fn needs_kernel_enter(&self) -> bool {
        // We only need to enter the kernel to submit SQEs, not to collect CQEs (the
        // kernel posts the CQEs asynchronously for us)
        self.waiting_kernel_submission() > 0
    }

    fn can_sleep(&self) -> bool {
        self.submission_queue.borrow().is_empty()
            && self.waiting_kernel_submission() == 0
            && self.waiting_kernel_collection() == 0
    }

    fn waiting_kernel_submission(&self) -> usize {
        self.ring.sq().ready() as usize
    }

    fn in_kernel(&self) -> usize {
        self.in_kernel
    }

    fn waiting_kernel_collection(&self) -> usize {
        self.ring.cq().ready() as usize
    }

    fn submission_queue(&mut self) -> ReactorQueue {
        self.submission_queue.clone()
    }

    fn submit_sqes(&mut self) -> io::Result<usize> {
        let x = self.ring.submit_sqes()? as usize;
        self.in_kernel += x;
        Ok(x)
    }

    fn consume_one_event(&mut self) -> Option<bool> {
        let source_map = self.source_map.clone();
        let buffers = self.buf_ring.clone();
        process_one_event(
            self.ring.peek_for_cqe(),
            |source| match source.source_type {
                SourceType::LinkRings => Some(()),
                _ => None,
            },
            |mut src, res| {
                record_stats(self, &mut src, &res);
                if let SourceType::ForeignNotifier(_, installed) = &mut src.source_type {
                    *installed = false;
                }
                res
            },
            source_map,
            buffers.as_deref(),
        )
        .map(|(woke, done)| {
            if done {
                self.in_kernel -= 1;
            }
            woke
        })
    }

    /// percore: an owned send is over once the kernel has consumed its
    /// entry. It either went out whole, leaving no completion, or failed
    /// (short, `EAGAIN`, an error): then its completion was posted before the
    /// `io_uring_enter` that submitted it returned, and
    /// `consume_completion_queue` has just processed it. So once the
    /// submission ring is empty, every owned send placed in it that still
    /// has no result went out whole.
    fn resolve_owned_sends(&mut self, woke: &mut usize) -> usize {
        if self.owned_sends.is_empty() || self.ring.sq().ready() != 0 {
            return 0;
        }
        let mut resolved = 0;
        let mut sends = std::mem::take(&mut self.owned_sends);
        for source in sends.drain(..) {
            let id = {
                let inner = source.borrow();
                match inner.enqueued.as_ref() {
                    Some(enqueued) if inner.wakers.result.is_none() => enqueued.id,
                    // Failed: its completion carried the result.
                    _ => continue,
                }
            };
            let src = self.source_map.borrow_mut().consume_source(id);
            drop(source);
            {
                let mut inner = src.borrow_mut();
                let sent = match &inner.source_type {
                    SourceType::SendOwned(buf) => buf.len(),
                    _ => 0,
                };
                inner.wakers.result = Some(Ok(sent));
                if inner.wakers.wake_waiters() {
                    *woke += 1;
                }
            }
            super::source::recycle(&src);
            self.in_kernel -= 1;
            resolved += 1;
        }
        // Put back, empty, to keep its capacity.
        self.owned_sends = sends;
        resolved
    }

    fn submit_one_event(&mut self, queue: &mut VecDeque<UringDescriptor>) -> Option<bool> {
        // percore: nothing to submit (most calls: every ring's queues are
        // polled several times a turn): no clock read.
        if queue.is_empty() {
            return Some(false);
        }
        let source_map = &mut *self.source_map.borrow_mut();
        let mut now = None;

        while let Some(chain) = peek_one_chain(queue, self.size) {
            return if let Some(sqes) = self.ring.sq().prepare_sqes(chain.len() as u32) {
                let ops = extract_one_chain(source_map, queue, chain, &mut now);
                if ops.is_empty() {
                    // all the sources in the ring were cancelled
                    continue;
                }

                for (op, mut sqe) in ops.into_iter().zip(sqes.into_iter()) {
                    let allocator = self.allocator.clone();
                    fill_sqe(
                        &mut sqe,
                        &op,
                        move |size| allocator.new_buffer(size),
                        source_map,
                    );
                    if let UringOpDescriptor::SendOwned(..) = op.args {
                        let source = source_map[from_user_data(op.user_data)].clone();
                        self.owned_sends.push(source);
                    }
                }
                Some(true)
            } else {
                None
            };
        }
        Some(false)
    }
}

pub(crate) struct Reactor {
    // FIXME: it is starting to feel we should clean this up to a Inner pattern
    main_ring: RefCell<SleepableRing>,
    latency_ring: RefCell<SleepableRing>,
    poll_ring: RefCell<PollRing>,

    /// The timeout armed on the latency ring for the next user timer before
    /// a sleep, and the instant it fires. Kept across turns while it is
    /// still pending and fires no later than needed (C): re-arming it costs
    /// an `io_uring_enter` on the latency ring (cancel + timeout). A kept one
    /// that falls due while a turn runs preempts it. Preemption itself is a
    /// deadline, not a timer (E).
    latency_timer_src: Cell<Option<(Source, Instant)>>,
    /// The count-based timeout on the main ring (fires after `ring_depth`
    /// completions and writes the eventfd that preempts). Kept armed until it
    /// fires instead of being cancelled and re-armed every turn.
    throughput_preemption_timeout_src: Cell<Option<Source>>,
    /// (E) When the running turn must yield: set by each non-sleeping `wait`
    /// to now plus the preempt duration, and read against the clock by
    /// `need_preempt`. It replaces a preempt timer on the latency ring,
    /// which cost a kernel entry to arm on most wake-ups at low load and,
    /// when it fired after its turn ended, a wake-up for nothing. `None`
    /// until the first such `wait`.
    preempt_deadline: Cell<Option<Instant>>,

    /// percore: this turn's clock reading for bookkeeping (see `now`).
    turn_clock: Cell<Option<Instant>>,
    /// percore: socket streams send with owned sends (`send_owned`).
    ring_send: Cell<bool>,
    /// percore: a task waits for an owned send queued this turn; the turn
    /// must not sleep in the call that submits it (a send that goes out
    /// whole posts no completion to end that sleep).
    owned_send_awaited: Cell<bool>,
    /// percore: owned sends that did not go out whole (see
    /// `note_owned_send_short`).
    owned_sends_short: Cell<u64>,

    link_fd: RawFd,
    /// The ring link armed by the last sleep that armed one (see
    /// `link_rings_and_sleep`).
    link_rings_src: RefCell<Option<Source>>,

    // This keeps the `eventfd` alive. Drop will close it when we're done
    notifier: Arc<sys::SleepNotifier>,
    // This is the source used to handle the notifications into the ring.
    // It is reused, unlike the timeout src, because it is possible and likely
    // that it will be in the ring through many calls to the reactor loop. It only ever gets
    // completed if this reactor is woken up from another one
    eventfd_src: Source,
    source_map: Rc<RefCell<SourceMap>>,

    blocking_thread: BlockingThreadPool,

    rings_depth: usize,
}

pub(crate) fn common_flags() -> PollFlags {
    PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL
}

/// Epoll flags for all possible readability events.
pub(crate) fn read_flags() -> PollFlags {
    PollFlags::POLLIN | PollFlags::POLLPRI
}

macro_rules! consume_rings {
    (into $woke:expr; $( $ring:expr ),+ ) => {{
        let mut consumed = 0;
        $(
            consumed += $ring.consume_completion_queue($woke);
        )*
        consumed
    }}
}
macro_rules! flush_cancellations {
    (into $output:expr; $( $ring:expr ),+ ) => {{
        $(
            $ring.flush_cancellations($output);
        )*
    }}
}

macro_rules! flush_rings {
    ($( $ring:expr ),+ ) => {{
        let mut ret = 0;
        $(
            ret += $ring.consume_submission_queue()
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
        )*
        io::Result::Ok(ret)
    }}
}

fn align_up(v: usize, align: usize) -> usize {
    (v + align - 1) & !(align - 1)
}

impl Reactor {
    pub(crate) fn new(
        notifier: Arc<sys::SleepNotifier>,
        mut io_memory: usize,
        ring_depth: usize,
        blocking_thread: BlockingThreadPool,
        defer_taskrun: bool,
    ) -> crate::Result<Reactor, ()> {
        const MIN_MEMLOCK_LIMIT: u64 = 512 * 1024;
        let (memlock_limit, _) = Resource::MEMLOCK.get()?;
        if memlock_limit < MIN_MEMLOCK_LIMIT {
            return Err(GlommioError::ReactorError(ReactorErrorKind::MemLockLimit(
                memlock_limit,
                MIN_MEMLOCK_LIMIT,
            )));
        }

        let source_map = Rc::new(RefCell::new(SourceMap::default()));
        // always have at least some small amount of memory for the slab
        io_memory = std::cmp::max(align_up(io_memory, 4096), 65536);

        let allocator = Rc::new(UringBufferAllocator::new(io_memory));
        let registry = vec![allocator.as_bytes()];

        let main_ring = SleepableRing::new(
            ring_depth,
            "main",
            allocator.clone(),
            source_map.clone(),
            defer_taskrun,
        )?;
        let poll_ring = PollRing::new(ring_depth, allocator.clone(), source_map.clone())?;
        let mut latency_ring =
            SleepableRing::new(ring_depth, "latency", allocator.clone(), source_map.clone(), false)?;

        match main_ring.registrar().register_buffers_by_ref(&registry) {
            Err(x) => warn!("Error: registering buffers in the main ring. Skipping{x:#?}"),
            Ok(_) => match poll_ring.registrar().register_buffers_by_ref(&registry) {
                Err(x) => {
                    warn!("Error: registering buffers in the poll ring. Skipping{x:#?}");
                    main_ring.registrar().unregister_buffers().unwrap();
                }
                Ok(_) => {
                    match latency_ring.registrar().register_buffers_by_ref(&registry) {
                        Err(x) => {
                            warn!("Error: registering buffers in the poll ring. Skipping{x:#?}");
                            poll_ring.registrar().unregister_buffers().unwrap();
                            main_ring.registrar().unregister_buffers().unwrap();
                        }
                        Ok(_) => {
                            allocator.activate_registered_buffers(0);
                        }
                    };
                }
            },
        }

        let link_fd = latency_ring.ring_fd();

        let eventfd_src = Source::new(
            IoRequirements::default(),
            notifier.eventfd_fd(),
            SourceType::ForeignNotifier(0, false),
            None,
            None,
        );

        if !eventfd_src.is_installed().unwrap() {
            latency_ring.install_eventfd(&eventfd_src);
        }

        Ok(Reactor {
            main_ring: RefCell::new(main_ring),
            latency_ring: RefCell::new(latency_ring),
            poll_ring: RefCell::new(poll_ring),
            latency_timer_src: Cell::new(None),
            throughput_preemption_timeout_src: Cell::new(None),
            preempt_deadline: Cell::new(None),
            turn_clock: Cell::new(None),
            ring_send: Cell::new(false),
            owned_send_awaited: Cell::new(false),
            owned_sends_short: Cell::new(0),
            blocking_thread,
            link_fd,
            link_rings_src: RefCell::new(None),
            notifier,
            eventfd_src,
            source_map,
            rings_depth: ring_depth,
        })
    }

    pub(crate) fn id(&self) -> usize {
        self.notifier.id()
    }

    pub(crate) fn ring_depth(&self) -> usize {
        self.rings_depth
    }

    /// Whether the main ring runs with `DEFER_TASKRUN` (asked for, and the
    /// kernel accepted it).
    pub(crate) fn defer_taskrun(&self) -> bool {
        self.main_ring.borrow().defer_taskrun
    }

    /// percore: registers `entries` provided buffers of `buffer_bytes` with
    /// the main ring, once, so that socket streams read with multishot
    /// receives. Only with `DEFER_TASKRUN`: their completions then run in
    /// the batch the executor reaps when it enters the kernel anyway (with
    /// `COOP_TASKRUN` alone they measured slower than a poll and a `recv`).
    /// A kernel with `DEFER_TASKRUN` (6.1) has multishot receives (6.0) and
    /// provided-buffer rings (5.19), so no receive is refused later; if the
    /// registration fails anyway, reads stay on the poll + `recv` path.
    /// Returns whether multishot receives are in use.
    pub(crate) fn enable_recv_multishot(&self, entries: u16, buffer_bytes: usize) -> bool {
        let mut ring = self.main_ring.borrow_mut();
        if ring.buf_ring.is_some() {
            return true;
        }
        if !ring.defer_taskrun {
            return false;
        }
        match BufRing::register(ring.ring_fd(), entries, buffer_bytes, 0) {
            Ok(buffers) => {
                ring.buf_ring = Some(Rc::new(buffers));
                true
            }
            Err(err) => {
                warn!("provided-buffer ring refused ({err}): reads stay poll + recv");
                false
            }
        }
    }

    /// percore: the provided buffers, if multishot receives are in use.
    pub(crate) fn recv_buffers(&self) -> Option<Rc<BufRing>> {
        self.main_ring.borrow().buf_ring.clone()
    }

    /// percore: queues a multishot receive on the main ring (see
    /// `enable_recv_multishot`); it is submitted with the turn's other
    /// entries.
    pub(crate) fn recv_multishot(&self, source: &Source, group: u16) {
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            UringOpDescriptor::RecvMultishot(group),
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn install_eventfd(&self) {
        if !self.eventfd_src.is_installed().unwrap() {
            self.latency_ring
                .borrow_mut()
                .install_eventfd(&self.eventfd_src);
        }
    }

    pub(crate) fn process_foreign_wakes(&self) -> usize {
        self.notifier.process_foreign_wakes()
    }

    pub(crate) fn alloc_dma_buffer(&self, size: usize) -> DmaBuffer {
        let mut poll_ring = self.poll_ring.borrow_mut();
        poll_ring.alloc_dma_buffer(size)
    }

    pub(crate) fn write_dma(&self, source: &Source, pos: u64) {
        let op = match &*source.source_type() {
            SourceType::Write(
                PollableStatus::NonPollable(DirectIo::Disabled),
                IoBuffer::DmaSource(buf),
            ) => UringOpDescriptor::Write(buf.as_ptr(), buf.len(), pos),
            SourceType::Write(_, IoBuffer::DmaSource(buf)) => match buf.uring_buffer_id() {
                Some(id) => UringOpDescriptor::WriteFixed(buf.as_ptr(), buf.len(), pos, id),
                None => UringOpDescriptor::Write(buf.as_ptr(), buf.len(), pos),
            },
            x => panic!("Unexpected source type for write: {:?}", x),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn write_buffered(&self, source: &Source, pos: u64) {
        let op = match &*source.source_type() {
            SourceType::Write(
                PollableStatus::NonPollable(DirectIo::Disabled),
                IoBuffer::Buffered(buf),
            ) => UringOpDescriptor::Write(buf.as_ptr(), buf.len(), pos),
            x => panic!("Unexpected source type for write: {:?}", x),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn read_dma(&self, source: &Source, pos: u64, size: usize) {
        let op = UringOpDescriptor::ReadFixed(pos, size);
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn read_buffered(&self, source: &Source, pos: u64, size: usize) {
        let op = UringOpDescriptor::Read(pos, size);
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn poll_ready(&self, source: &Source, flags: PollFlags) {
        let op = UringOpDescriptor::PollAdd(flags);
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn send(&self, source: &Source, flags: MsgFlags) {
        let op = match &*source.source_type() {
            SourceType::SockSend(buf) => {
                UringOpDescriptor::SockSend(buf.as_ptr(), buf.len(), flags.bits())
            }
            _ => unreachable!(),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn sendmsg(&self, source: &Source, flags: MsgFlags) {
        let op = match &mut *source.source_type_mut() {
            SourceType::SockSendMsg(state) => {
                let (_, iov, hdr, addr) = &mut **state;
                let msg_name = addr.as_ptr() as *mut libc::c_void;
                let msg_namelen = addr.len();

                hdr.msg_iov = iov as *mut libc::iovec;
                hdr.msg_iovlen = 1;
                hdr.msg_name = msg_name;
                hdr.msg_namelen = msg_namelen;

                UringOpDescriptor::SockSendMsg(hdr, flags.bits())
            }
            _ => unreachable!(),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn recv(&self, source: &Source, len: usize, flags: MsgFlags) {
        let op = UringOpDescriptor::SockRecv(len, flags.bits());
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn recvmsg(&self, source: &Source, len: usize, flags: MsgFlags) {
        let op = UringOpDescriptor::SockRecvMsg(len, flags.bits());
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn connect(&self, source: &Source) {
        let op = match &*source.source_type() {
            SourceType::Connect(addr) => UringOpDescriptor::Connect(&**addr as *const _),
            x => panic!("Unexpected source type for connect: {:?}", x),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn accept(&self, source: &Source) {
        let op = match &mut *source.source_type_mut() {
            SourceType::Accept(addr) => UringOpDescriptor::Accept(&mut **addr as *mut SockAddrStorage),
            x => panic!("Unexpected source type for accept: {:?}", x),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn fdatasync(&self, source: &Source) {
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            UringOpDescriptor::FDataSync,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn fallocate(&self, source: &Source, offset: u64, size: u64, flags: libc::c_int) {
        let op = UringOpDescriptor::Fallocate(offset, size, flags);
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    fn enqueue_blocking_request(
        &self,
        source: Pin<Rc<RefCell<InnerSource>>>,
        op: BlockingThreadOp,
    ) -> impl Future<Output = ()> {
        self.blocking_thread.push(op, source)
    }

    pub(crate) fn truncate(&self, source: &Source, size: u64) -> impl Future<Output = ()> {
        let op = BlockingThreadOp::Truncate(source.raw(), size as _);
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn rename(&self, source: &Source) -> impl Future<Output = ()> {
        let (old_path, new_path) = match &*source.source_type() {
            SourceType::Rename(o, n) => (o.clone(), n.clone()),
            _ => panic!("Unexpected source for rename operation"),
        };

        let op = BlockingThreadOp::Rename(old_path, new_path);
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn copy_file_range(&self, source: &Source, pos: u64) -> impl Future<Output = ()> {
        let (fd_in, off_in, len) = match &*source.source_type() {
            SourceType::CopyFileRange(fd_in, off_in, len) => (*fd_in, *off_in, *len),
            _ => panic!("Unexpected source for copy_file_range operation"),
        };

        let op = BlockingThreadOp::CopyFileRange(
            fd_in,
            (off_in).try_into().unwrap(),
            source.raw(),
            pos.try_into().unwrap(),
            len,
        );
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn create_dir(
        &self,
        source: &Source,
        mode: libc::c_int,
    ) -> impl Future<Output = ()> {
        let path = match &*source.source_type() {
            SourceType::CreateDir(p) => p.clone(),
            _ => panic!("Unexpected source for rename operation"),
        };

        let op = BlockingThreadOp::CreateDir(path, mode);
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn remove_file(&self, source: &Source) -> impl Future<Output = ()> {
        let path = match &*source.source_type() {
            SourceType::Remove(path) => path.clone(),
            _ => panic!("Unexpected source for remove operation"),
        };

        let op = BlockingThreadOp::Remove(path);
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn run_blocking(
        &self,
        source: &Source,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> impl Future<Output = ()> {
        assert!(matches!(&*source.source_type(), SourceType::BlockingFn));

        let op = BlockingThreadOp::Fn(f);
        self.enqueue_blocking_request(source.inner.clone(), op)
    }

    pub(crate) fn close(&self, source: &Source) {
        let op = UringOpDescriptor::Close;
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn statx(&self, source: &Source) {
        let op = match &*source.source_type() {
            SourceType::Statx(path, buf) => {
                let path = path.as_c_str().as_ptr();
                let buf = buf.as_ptr();
                UringOpDescriptor::Statx(path as _, buf)
            }
            _ => panic!("Unexpected source for statx operation"),
        };
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    pub(crate) fn open_at(&self, source: &Source, flags: libc::c_int, mode: libc::mode_t) {
        let pathptr = match &*source.source_type() {
            SourceType::Open(cstring) => cstring.as_c_str().as_ptr(),
            _ => panic!("Wrong source type!"),
        };
        let op = UringOpDescriptor::Open(pathptr as _, flags, mode as _);
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    #[cfg(feature = "bench")]
    pub(crate) fn nop(&self, source: &Source) {
        queue_request_into_ring(
            &mut *self.ring_for_source(source),
            source,
            UringOpDescriptor::Nop,
            &mut *self.source_map.borrow_mut(),
        );
    }

    /// io_uring can return `EBUSY` when submitting more requests would
    /// over-commit the system. This is fine: we just need to make sure that we
    /// don't sleep and that we don't failed rushed polls. So we just ignore
    /// this error
    fn busy_ok<T: Default>(x: std::io::Error) -> io::Result<T> {
        match x.raw_os_error() {
            Some(libc::EBUSY) => Ok(Default::default()),
            Some(_) => Err(x),
            None => Err(x),
        }
    }

    /// io_uring can return `EAGAIN` when the CQE queue is full, and we try to
    /// push more requests. This is fine: we just need to make sure that we
    /// don't sleep and that we don't failed rushed polls. So we just ignore
    /// this error
    fn again_ok<T: Default>(x: std::io::Error) -> io::Result<T> {
        match x.raw_os_error() {
            Some(libc::EAGAIN) => Ok(Default::default()),
            Some(_) => Err(x),
            None => Err(x),
        }
    }

    /// io_uring can return `EINTR` if the syscall was interrupted by a signal
    /// delivery. This is fine: we just need to make sure that we
    /// don't sleep and that we don't failed rushed polls. So we just ignore
    /// this error
    fn intr_ok<T: Default>(x: std::io::Error) -> io::Result<T> {
        match x.raw_os_error() {
            Some(libc::EINTR) => Ok(Default::default()),
            Some(_) => Err(x),
            None => Err(x),
        }
    }

    /// We want to go to sleep, but we can only go to sleep in one of the rings,
    /// as we only have one thread. There are more than one sleepable rings, so
    /// what we do is we take advantage of the fact that the ring's `ring_fd` is
    /// pollable and register a `POLL_ADD` event into the ring we will wait on.
    ///
    /// We may not be able to register an `SQE` at this point, so we return an
    /// Error and will just not sleep.
    ///
    /// (C') The link is one-shot: it completes when the latency ring next
    /// posts a completion. One armed by an earlier sleep that has not
    /// completed (the executor woke for something else) is still armed, and
    /// still fires on the next latency-ring completion, so no new one is
    /// armed. Upstream armed one per sleep and left the others in the kernel:
    /// with the latency-ring timer kept across turns (C) they piled up until
    /// the latency ring's next completion ended them all at once, and with
    /// `DEFER_TASKRUN` each such completion cost a reap before sleeping.
    fn link_rings_and_sleep(&self, ring: &mut SleepableRing) -> io::Result<()> {
        let mut armed = self.link_rings_src.borrow_mut();
        // Its completion reaped, a link leaves the source map (`enqueued`).
        let pending = matches!(&*armed, Some(src) if src.inner.borrow().enqueued.is_some());
        if pending {
            return ring.sleep(None).map(|_| {});
        }
        let link_rings = Source::new(
            IoRequirements::default(),
            self.link_fd,
            SourceType::LinkRings,
            None,
            None,
        );
        let in_kernel = ring.sleep(Some(&link_rings))?;
        *armed = in_kernel.then_some(link_rings);
        Ok(())
    }

    /// Polls every ring without sleeping. With `submit_main` false the main
    /// ring's new entries are only placed in its submission ring: the caller
    /// is about to park, and the call that sleeps submits them (A).
    pub(crate) fn poll_io(&self, woke: &mut usize, submit_main: bool) -> io::Result<()> {
        self.poll_ring.borrow_mut().poll(woke)?;
        // Cancellations complete at once: submit them now rather than wake
        // straight out of the sleep for them.
        let submit_main = submit_main || self.main_ring.borrow().cancellations_pending();
        if submit_main {
            let mut main_ring = self.main_ring.borrow_mut();
            main_ring.poll(woke)?;
            // DEFER_TASKRUN: a turn that does not park reaps what the kernel
            // holds (one load when it holds nothing); one that parks leaves
            // it to the check before the call that sleeps.
            main_ring.reap_deferred(woke);
        } else {
            let mut main_ring = self.main_ring.borrow_mut();
            main_ring
                .consume_cancellation_queue()
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
            main_ring
                .prepare_submissions()
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
            main_ring.consume_completion_queue(woke);
        }
        self.latency_ring.borrow_mut().poll(woke)?;
        *woke += self.flush_syscall_thread();
        Ok(())
    }

    pub(crate) fn rush_dispatch(&self, src: &Source, woke: &mut usize) -> io::Result<()> {
        let ring = &mut *self.ring_for_source(src);
        if ring.may_rush() {
            ring.poll(woke)
        } else {
            Ok(())
        }
    }

    /// This function can be passed two timers. Because they play different
    /// roles we keep them separate instead of overloading the same
    /// parameter.
    ///
    /// * The first is the preempt timer. It is designed to take the current
    ///   task queue out of the cpu. If nothing else fires in the latency ring
    ///   the preempt timer will, making need_preempt return true. Currently, we
    ///   always install a preempt timer in the upper layers but from the point
    ///   of view of the io_uring implementation it is optional: it is perfectly
    ///   valid not to have one. Preempt timers are installed by Glommio
    ///   executor runtime.
    ///
    /// * The second is the user timer. It is installed per a user request when
    ///   the user creates a `Timer` (or `TimerAction`).
    ///
    /// At some level, those are both just timers and can be coalesced. And they
    /// certainly are: if there is a user timer that needs to fire in 1ms, and
    /// we want the preempt_timer to also fire around 1ms, there is no need
    /// to register two timers. At the end of the day, all that matters is
    /// that the latency ring flares and that we leave the CPU. That is
    /// because unlike I/O, we don't have one Source per timer, and
    /// parking.rs just keeps them on a wheel and just tell us about what is
    /// the next expiration.
    ///
    /// However, they are also different. The main source of difference is sleep
    /// and wake behavior:
    ///
    /// * When there is no more work to do, and we go to sleep, we do not want
    ///   to register the preempt timer: it is designed to fire periodically to
    ///   take us out of the CPU and if there is no task queue running, we don't
    ///   want to wake up and spend power just for that. However, if there is a
    ///   user timer that needs to fire in the future we must register it.
    ///   Otherwise, we will sleep and never wake up.
    ///
    /// * The user timer point of expiration never changes. So once we register
    ///   it we don't need to rearm it until it fires. But the preempt timer has
    ///   to be rearmed every time. Moreover, it needs to give every task queue
    ///   a fair shot at running. So it needs to be rearmed as close as possible
    ///   to the point where we *leave* this method. For instance: if we spin
    ///   here for 3ms and the preempt timer is 10ms that would leave the next
    ///   task queue just 7ms to run.
    ///
    /// (C, patched for percore) The one latency-ring timeout is no longer
    /// cancelled and re-armed around every turn (two kernel entries per
    /// turn: cancel + timeout before running, cancel + timeout before
    /// sleeping). It stays armed while it is still pending and fires no later
    /// than the user timer's deadline when sleeping; a kept user timer
    /// preempts a running turn when it falls due. A timer kept across a sleep
    /// with no user timer left wakes the executor once, for nothing;
    /// cancelling it would cost a kernel entry per park.
    ///
    /// (E, patched for percore) Preemption is not a kernel timer any more: a
    /// non-sleeping call sets the turn's deadline (now plus the preempt
    /// duration) and `need_preempt` compares it with the clock. The kernel
    /// timer cost an `io_uring_enter` on the latency ring on most wake-ups
    /// at low load (one was armed per turn unless a pending one fired early
    /// enough), and one that fired after its turn ended woke the executor
    /// for nothing.
    pub(crate) fn wait<Preempt, F>(
        &self,
        preempt_timer: Preempt,
        user_timer: Option<Instant>,
        mut woke: usize,
        process_remote_channels: F,
    ) -> io::Result<bool>
    where
        Preempt: Fn() -> Option<Duration>,
        F: Fn() -> usize,
    {
        woke += self.flush_syscall_thread();

        let mut poll_ring = self.poll_ring.borrow_mut();
        let mut main_ring = self.main_ring.borrow_mut();
        let mut lat_ring = self.latency_ring.borrow_mut();

        // consume all events from the rings
        consume_rings!(into &mut woke; lat_ring, poll_ring, main_ring);

        // The throughput-based timeout counts completions on the main ring, so
        // it does not matter whether we sleep. (B) One that is still pending is
        // kept: it fires after `ring_depth` completions since it was armed
        // rather than since this turn began. Cancelling and re-arming it every
        // turn cost three entries (cancel, timeout, linked eventfd write) and
        // an `io_uring_enter` per turn.
        match self.throughput_preemption_timeout_src.take() {
            Some(pending) if !pending.has_result() => {
                self.throughput_preemption_timeout_src.set(Some(pending));
            }
            _ => {
                self.throughput_preemption_timeout_src.set(Some(
                    main_ring.prepare_throughput_preemption_timer(
                        self.ring_depth() as u32,
                        self.eventfd_src.raw(),
                    ),
                ));
            }
        }

        // (A) If this call may sleep, the main ring's entries are only placed
        // in its submission ring here: the call that sleeps submits them. Not
        // with a cancellation among them: it completes at once, so the call
        // that sleeps would return at once, and a turn that cancels something
        // every time would never sleep.
        // percore: a task waiting for an owned send must learn its result
        // from the submitting call, which must then not sleep (see
        // `send_owned`).
        let send_awaited = self.owned_send_awaited.replace(false);
        let defer_main = preempt_timer().is_none()
            && woke == 0
            && !send_awaited
            && !main_ring.cancellations_pending();

        // This will only dispatch if we run out of sqes. Which means until
        // flush_rings! nothing is really send to the kernel...
        flush_cancellations!(into &mut woke; lat_ring, poll_ring, main_ring);
        // ... which happens right here. If you ever reorder this code just
        // be careful about this dependency.
        if defer_main {
            flush_rings!(lat_ring, poll_ring)?;
            main_ring
                .prepare_submissions()
                .or_else(Reactor::busy_ok)
                .or_else(Reactor::again_ok)
                .or_else(Reactor::intr_ok)?;
        } else {
            flush_rings!(lat_ring, poll_ring, main_ring)?;
        }
        // pick up the results of any cancellations
        consume_rings!(into &mut woke; lat_ring, poll_ring, main_ring);
        // DEFER_TASKRUN: a turn that will not sleep reaps what the kernel
        // holds for the main ring (one load when it holds nothing); one that
        // may sleep checks just before the call that sleeps.
        if preempt_timer().is_some() {
            main_ring.reap_deferred(&mut woke);
        }

        // If we generated any event so far, we can't sleep. Need to handle them.
        let should_sleep = preempt_timer().is_none()
            && (woke == 0)
            && !send_awaited
            && poll_ring.can_sleep()
            && (if defer_main {
                main_ring.can_sleep_submitting()
            } else {
                main_ring.can_sleep()
            })
            && lat_ring.can_sleep();

        let mut slept = false;
        if should_sleep {
            // We are about to go to sleep. It's ok to sleep, but if there
            // is a timer set, we need to make sure we wake up to handle it.
            //
            // (C) The armed timer is kept if it fires by then. This is decided
            // after the last reap of the latency ring above: a timer whose
            // completion was reaped has a result and is replaced, and one that
            // completes from here on leaves its completion in the latency
            // ring, which the ring link (`sleep`) sees at once.
            if let Some(at) = user_timer {
                if !self.latency_timer_fires_by(at) {
                    self.arm_latency_timer(&mut lat_ring, at);
                    assert!(flush_rings!(lat_ring)? > 0);
                }
            }
            // From this moment on the remote executors are aware that we are sleeping
            // We have to sweep the remote channels function once more because since
            // last time until now it could be that something happened in a remote executor
            // that opened up room. If it did we bail on sleep and go process it.
            self.notifier.prepare_to_sleep();
            // (D) Dekker's handshake with the remote side: our store of
            // `should_notify` (above) and our loads of the channels and queues
            // (below) are ordered by this SeqCst fence; the remote side orders
            // its publication and its load of `should_notify` by the fence in
            // `SleepNotifier::notify`, which every cross-thread wake calls
            // (shared channels, foreign wakers via `queue_waker`, the blocking
            // pool). So either we see the event here, or the remote side sees
            // `should_notify` and writes our eventfd. This replaces
            // `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, a system call on
            // every park, which let the remote side skip its fence.
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            let mut events = process_remote_channels() + self.flush_syscall_thread();
            // DEFER_TASKRUN: completions the kernel holds for the main ring
            // (usually the previous sleep's ring link, made ready by a
            // latency-ring completion since: with C, a timer that fired or
            // was replaced, no longer one every turn) would be posted by the
            // call that sleeps and end it at once: a wasted call, then the
            // real one. Post and reap them here with one `io_uring_enter`
            // (GETEVENTS, nothing to wait for), and sleep only if they woke
            // nothing.
            //
            // (G) A turn that parks has usually queued sends: they ride on
            // that same call (`submit_and_reap`) rather than on one after it
            // when the reap woke something and the executor does not sleep.
            main_ring.submit_and_reap(&mut events)?;
            if events == 0 {
                if self.eventfd_src.is_installed().unwrap() {
                    self.link_rings_and_sleep(&mut main_ring)
                        .expect("some error");
                    slept = true;
                    self.forget_now();
                    // May have new cancellations related to the link ring fd.
                    flush_cancellations!(into &mut 0; lat_ring, poll_ring, main_ring);
                    flush_rings!(lat_ring, poll_ring, main_ring)?;
                    consume_rings!(into &mut 0; lat_ring, poll_ring, main_ring);
                }
                // Woke up, so no need to notify us anymore.
                self.notifier.wake_up();
            }
        }
        if defer_main && !slept {
            // We did not sleep after all: submit what was waiting for it.
            flush_rings!(main_ring)?;
        }

        if let Some(preempt) = preempt_timer() {
            // (E) The turn that follows must yield by then: `need_preempt`
            // compares this deadline with the clock. No timer is armed.
            // A fresh reading: the calls above may have run the kernel's
            // deferred work for many sockets. It serves this turn's
            // bookkeeping too (`now`).
            let now = Instant::now();
            self.note_now(now);
            self.preempt_deadline.set(Some(now + preempt));
        }

        // A Note about `need_preempt`:
        //
        // If in the last call to consume_rings! some events completed, the tail and
        // head would have moved to match. So it does not matter that events were
        // generated after the deadline was set: since we consumed them here,
        // need_preempt() should be false at this point. As soon as the next event
        // in the latency ring completes (a user timer, the eventfd), though, or
        // the deadline passes, it will be true.
        Ok(should_sleep)
    }

    /// Is the armed latency-ring timer still pending (its completion not
    /// reaped), and does it fire no later than `deadline`? (C)
    fn latency_timer_fires_by(&self, deadline: Instant) -> bool {
        let armed = self.latency_timer_src.take();
        let fires_by = matches!(&armed, Some((src, at)) if !src.has_result() && *at <= deadline);
        self.latency_timer_src.set(armed);
        fires_by
    }

    /// Replaces the latency-ring timer with one that fires at `at` (relative
    /// to now: the kernel fires it at `at` plus the microseconds until the
    /// submission, never early). The old one, if still in the kernel, is
    /// cancelled by the same submission. (C)
    fn arm_latency_timer(&self, lat_ring: &mut SleepableRing, at: Instant) {
        drop(self.latency_timer_src.take());
        let dur = at.saturating_duration_since(Instant::now());
        let source = lat_ring.prepare_latency_preemption_timer(dur);
        // Place the cancellation in the submission ring now, so the flush
        // that submits the new timer submits it too.
        let _ = lat_ring.consume_cancellation_queue();
        self.latency_timer_src.set(Some((source, at)));
    }

    /// Has the running turn reached the deadline set by the last
    /// non-sleeping `wait`? One clock read (vDSO). (E)
    #[inline]
    pub(crate) fn preempt_deadline_passed(&self) -> bool {
        matches!(self.preempt_deadline.get(), Some(at) if Instant::now() >= at)
    }

    /// percore: the time for the executor's bookkeeping (timers due, task
    /// queue runtimes): this turn's last reading if there is one, else a
    /// new one. The executor forgets it when it wakes from sleep, and
    /// replaces it with a fresh reading after each task runs and at the end
    /// of each non-sleeping `wait` (`forget_now`, `note_now`), so that one
    /// reading serves every check in between instead of a clock read each
    /// (nine per isolated request before). It lags the clock by the
    /// bookkeeping since, microseconds: a timer can fire a turn later,
    /// never earlier.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self.turn_clock.get() {
            Some(now) => now,
            None => {
                let now = Instant::now();
                self.turn_clock.set(Some(now));
                now
            }
        }
    }

    /// percore: a fresh clock reading taken by the caller, for `now`.
    #[inline]
    pub(crate) fn note_now(&self, now: Instant) {
        self.turn_clock.set(Some(now));
    }

    /// percore: the next `now` reads the clock (the executor slept).
    #[inline]
    pub(crate) fn forget_now(&self) {
        self.turn_clock.set(None);
    }

    /// Had the turn's preempt deadline passed at `now`? No clock read.
    #[inline]
    pub(crate) fn preempt_deadline_passed_at(&self, now: Instant) -> bool {
        matches!(self.preempt_deadline.get(), Some(at) if now >= at)
    }

    /// percore: socket streams created from now on send with owned sends
    /// (`send_owned`) instead of a `send` system call per write.
    pub(crate) fn enable_ring_send(&self) {
        self.ring_send.set(true);
    }

    /// percore: whether socket streams send with owned sends.
    pub(crate) fn ring_send(&self) -> bool {
        self.ring_send.get()
    }

    /// percore: queues `source`'s owned send (`SourceType::SendOwned`) on
    /// the main ring, submitted with the turn's other entries. It is
    /// resolved within the `io_uring_enter` that submits it: it goes out
    /// whole without a completion (`IOSQE_CQE_SKIP_SUCCESS`), or its
    /// completion reports how much went out (a short send: the socket
    /// buffer filled up), `EAGAIN` (nothing went out) or the error. The
    /// source owns the buffer until then, so a stream dropped meanwhile
    /// frees nothing the kernel reads. No system call of its own: it rides
    /// on the call the executor makes anyway (the one that sleeps, at low
    /// load; one per turn for a whole batch, at saturation).
    pub(crate) fn send_owned(&self, source: &Source) {
        let op = match &*source.source_type() {
            SourceType::SendOwned(buf) => UringOpDescriptor::SendOwned(buf.as_ptr(), buf.len()),
            _ => unreachable!(),
        };
        queue_request_into_ring(
            &mut *self.main_ring.borrow_mut(),
            source,
            op,
            &mut self.source_map.borrow_mut(),
        );
    }

    /// percore: submits the entries already placed in the main ring's
    /// submission ring, if any (without waiting): what they name is still
    /// valid now, and may not be by the executor's next `io_uring_enter`.
    pub(crate) fn submit_placed(&self) {
        if let Ok(mut ring) = self.main_ring.try_borrow_mut() {
            if ring.waiting_kernel_submission() > 0 {
                let _ = ring.submit_sqes();
            }
        }
    }

    /// percore: an owned send came back short, or found the socket buffer
    /// full: its stream writes the rest the usual way.
    pub(crate) fn note_owned_send_short(&self) {
        self.owned_sends_short.set(self.owned_sends_short.get() + 1);
    }

    /// percore: how many owned sends did not go out whole.
    pub(crate) fn owned_sends_short(&self) -> u64 {
        self.owned_sends_short.get()
    }

    /// percore: a task waits for an owned send's result: the next turn
    /// submits it without sleeping, so that the task learns it at once.
    pub(crate) fn note_owned_send_awaited(&self) {
        self.owned_send_awaited.set(true);
    }

    pub(crate) fn flush_syscall_thread(&self) -> usize {
        self.blocking_thread.flush()
    }

    pub(crate) fn preempt_pointers(&self) -> (*const u32, *const u32) {
        let mut lat_ring = self.latency_ring.borrow_mut();
        let cq = unsafe { &lat_ring.ring.raw_mut().cq };
        (cq.khead, cq.ktail)
    }

    /// RAII-truncate asynchronously files that required it, e.g. because of
    /// padded writes, but were not closed explicitly.
    pub(crate) fn async_truncate(&self, fd: RawFd, size: u64) {
        // actually synchronous for now!
        let _ = sys::truncate_file(fd, size);
    }

    /// RAII-close asynchronously files that were not closed explicitly.
    /// We can't do this through a Source, because the Source will be dropped
    /// when the file is dropped.
    pub(crate) fn async_close(&self, fd: RawFd) {
        let q = self.main_ring.borrow_mut().submission_queue();
        let mut queue = q.borrow_mut();
        queue.submissions.push_back(UringDescriptor {
            args: UringOpDescriptor::Close,
            fd,
            flags: SubmissionFlags::empty(),
            user_data: 0,
        });
    }

    pub(crate) fn ring_for_source(&self, source: &Source) -> RefMut<'_, dyn UringCommon> {
        // Dispatch requests according to the following rules:
        // * Disk reads/writes go to the poll ring if possible, or the main ring
        //   otherwise;
        // * Network Rx and connect/accept go the latency ring;
        // * Every other request are dispatched to the main ring;
        // We avoid putting requests that come in high numbers on the latency ring
        // because the more request we issue there, the less effective it becomes.

        match &*source.source_type() {
            SourceType::Read(p, _) | SourceType::Write(p, _) => match p {
                PollableStatus::Pollable => self.poll_ring.borrow_mut(),
                PollableStatus::NonPollable(_) => self.main_ring.borrow_mut(),
            },
            SourceType::SockRecv(_)
            | SourceType::SockRecvMsg(_)
            | SourceType::Accept(_)
            | SourceType::Connect(_) => self.latency_ring.borrow_mut(),
            SourceType::Invalid => {
                unreachable!("called ring_for_source on invalid source")
            }
            _ => self.main_ring.borrow_mut(),
        }
    }

    pub fn io_stats(&self) -> IoStats {
        IoStats::new(
            std::mem::take(&mut self.main_ring.borrow_mut().stats),
            std::mem::take(&mut self.latency_ring.borrow_mut().stats),
            std::mem::take(&mut self.poll_ring.borrow_mut().stats),
        )
    }

    pub(crate) fn task_queue_io_stats(&self, h: &TaskQueueHandle) -> Option<IoStats> {
        let main = self
            .main_ring
            .borrow_mut()
            .task_queue_stats
            .get_mut(h)
            .map(std::mem::take);
        let lat = self
            .latency_ring
            .borrow_mut()
            .task_queue_stats
            .get_mut(h)
            .map(std::mem::take);
        let poll = self
            .poll_ring
            .borrow_mut()
            .task_queue_stats
            .get_mut(h)
            .map(std::mem::take);

        if let (None, None, None) = (&main, &lat, &poll) {
            None
        } else {
            Some(IoStats::new(
                main.unwrap_or_default(),
                lat.unwrap_or_default(),
                poll.unwrap_or_default(),
            ))
        }
    }
}

fn queue_request_into_ring(
    ring: &mut (impl UringCommon + ?Sized),
    source: &Source,
    descriptor: UringOpDescriptor,
    source_map: &mut SourceMap,
) {
    {
        let mut inner = source.inner.borrow_mut();
        if inner.records_latency() {
            inner.wakers.times_mut().queued_at = Some(Instant::now());
        }
    }
    let q = ring.submission_queue();
    let id = source_map.add_source(source, Rc::clone(&q));

    let flags = match &*source.timeout_ref() {
        Some(_) => SubmissionFlags::IO_LINK,
        _ => SubmissionFlags::empty(),
    };

    let mut queue = q.borrow_mut();
    queue.submissions.push_back(UringDescriptor {
        args: descriptor,
        fd: source.raw(),
        flags,
        user_data: to_user_data(id),
    });

    if let Some(ref ts) = &*source.timeout_ref() {
        queue.submissions.push_back(UringDescriptor {
            args: UringOpDescriptor::LinkTimeout(&ts.raw as *const _),
            flags: SubmissionFlags::empty(),
            fd: -1,
            user_data: 0,
        });
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {}
}

#[cfg(test)]
mod tests {
    use crate::PoolPlacement;
    use std::time::Instant;

    use super::*;

    #[test]
    fn timeout_smoke_test() {
        let notifier = sys::new_sleep_notifier().unwrap();
        let pool = BlockingThreadPool::new(PoolPlacement::Unbound(1), notifier.clone()).unwrap();
        let reactor = Reactor::new(notifier, 0, 128, pool, true).unwrap();

        fn timeout_source(millis: u64) -> (Source, UringOpDescriptor) {
            let source = Source::new(
                IoRequirements::default(),
                -1,
                SourceType::Timeout(
                    TimeSpec64::try_from(Duration::from_millis(millis)).unwrap(),
                    0,
                ),
                None,
                None,
            );
            let op = match &*source.source_type() {
                SourceType::Timeout(ts, events) => {
                    UringOpDescriptor::Timeout(&ts.raw as *const _, *events)
                }
                _ => unreachable!(),
            };
            (source, op)
        }

        let (fast, op) = timeout_source(50);
        queue_request_into_ring(
            &mut *reactor.ring_for_source(&fast),
            &fast,
            op,
            &mut reactor.source_map.borrow_mut(),
        );

        let (slow, op) = timeout_source(150);
        queue_request_into_ring(
            &mut *reactor.ring_for_source(&slow),
            &slow,
            op,
            &mut reactor.source_map.borrow_mut(),
        );

        let (lethargic, op) = timeout_source(300);
        queue_request_into_ring(
            &mut *reactor.ring_for_source(&lethargic),
            &lethargic,
            op,
            &mut reactor.source_map.borrow_mut(),
        );

        let start = Instant::now();
        reactor.wait(|| None, None, 0, || 0).unwrap();
        let elapsed_ms = start.elapsed().as_millis();
        assert!((50..100).contains(&elapsed_ms));

        drop(slow); // Cancel this one.

        reactor.wait(|| None, None, 0, || 0).unwrap();
        let elapsed_ms = start.elapsed().as_millis();
        assert!((300..350).contains(&elapsed_ms));
    }

    #[test]
    fn allocator() {
        let l = Layout::from_size_align(10 << 20, 4 << 10).unwrap();
        let (data, mut allocator) = unsafe {
            let data = alloc::alloc::alloc(l);
            assert_eq!(data as usize & 4095, 0);
            let data = std::ptr::NonNull::new(data).unwrap();
            (
                data,
                BuddyAlloc::new(BuddyAllocParam::new(data.as_ptr(), l.size(), l.align())),
            )
        };
        let x = allocator.malloc(4096);
        assert_eq!(x as usize & 4095, 0);
        let x = allocator.malloc(1024);
        assert_eq!(x as usize & 4095, 0);
        let x = allocator.malloc(1);
        assert_eq!(x as usize & 4095, 0);
        unsafe { alloc::alloc::dealloc(data.as_ptr(), l) }
    }

    #[test]
    fn allocator_exhaustion() {
        // The allocator fails with a single page, because it needs extra metadata
        // space
        let al = Rc::new(UringBufferAllocator::new(8192));
        al.activate_registered_buffers(1234);
        let x = al.new_buffer(4096).unwrap();
        let y = al.new_buffer(4096).unwrap();

        if y.uring_buffer_id().is_some() {
            panic!("Expected non-uring buffer")
        }

        if y.uring_buffer_id().is_some() {
            unreachable!("Expected non-uring buffer")
        }
        drop(x);
        drop(y);

        // memory is back, able to allocate again
        let x = al.new_buffer(4096).unwrap();
        match x.uring_buffer_id() {
            Some(x) => assert_eq!(x, 1234),
            None => unreachable!("Expected uring buffer"),
        }
        drop(x);
        // Allocation for an object that is too big fails
        let x = al.new_buffer(40960).unwrap();
        if x.uring_buffer_id().is_some() {
            unreachable!("Expected non-uring buffer")
        }
    }

    #[test]
    fn sqe_link_chain() {
        let allocator = Rc::new(UringBufferAllocator::new(65536));
        let source_map = Rc::new(RefCell::new(SourceMap::default()));
        // percore: without `DEFER_TASKRUN` (the last argument), which posts
        // a linked entry's completion only at the next `io_uring_enter`
        // with GETEVENTS: this test counts completions right after the
        // submission. The executor reaps them (`reap_deferred`).
        let mut ring = SleepableRing::new(4, "main", allocator, source_map, false).unwrap();
        let q = ring.submission_queue();
        let mut queue = q.borrow_mut();

        // enqueue three nops. The second is soft-linked to the third
        for i in 0..3 {
            queue.submissions.push_back(UringDescriptor {
                args: UringOpDescriptor::Nop,
                fd: -1,
                flags: if i == 1 {
                    SubmissionFlags::IO_LINK
                } else {
                    SubmissionFlags::empty()
                },
                user_data: 0,
            });
        }

        // the first nop is unlinked, so we're only expecting one SQE
        ring.submit_one_event(&mut queue.submissions);
        assert_eq!(1, ring.submit_sqes().unwrap());
        assert_eq!(1, ring.consume_completion_queue(&mut 0));

        // the following nops are linked, so we expect two submissions and completions
        ring.submit_one_event(&mut queue.submissions);
        assert_eq!(2, ring.submit_sqes().unwrap());
        assert_eq!(2, ring.consume_completion_queue(&mut 0));
    }

    #[test]
    #[should_panic(expected = "Unterminated SQE link chain")]
    fn unterminated_sqe_link_chain() {
        let allocator = Rc::new(UringBufferAllocator::new(65536));
        let source_map = Rc::new(RefCell::new(SourceMap::default()));
        let mut ring = SleepableRing::new(2, "main", allocator, source_map, true).unwrap();
        let q = ring.submission_queue();
        let mut queue = q.borrow_mut();

        queue.submissions.push_back(UringDescriptor {
            args: UringOpDescriptor::Close,
            fd: -1,
            flags: SubmissionFlags::IO_LINK,
            user_data: 0,
        });

        // If the link chain points outside of the queue, we panic
        ring.submit_one_event(&mut queue.submissions);
    }

    #[test]
    #[should_panic(expected = "Unterminated SQE link chain or submission queue overflow")]
    fn sqe_link_chain_overflow() {
        let allocator = Rc::new(UringBufferAllocator::new(65536));
        let source_map = Rc::new(RefCell::new(SourceMap::default()));
        let mut ring = SleepableRing::new(2, "main", allocator, source_map, true).unwrap();
        let q = ring.submission_queue();
        let mut queue = q.borrow_mut();

        for _ in 0..2 {
            queue.submissions.push_back(UringDescriptor {
                args: UringOpDescriptor::Close,
                fd: -1,
                flags: SubmissionFlags::IO_LINK,
                user_data: 0,
            });
        }

        queue.submissions.push_back(UringDescriptor {
            args: UringOpDescriptor::Close,
            fd: -1,
            flags: SubmissionFlags::empty(),
            user_data: 0,
        });

        // If the link chain is longer than the io_uring submission queue, we panic
        ring.submit_one_event(&mut queue.submissions);
    }
}
