// percore: a provided-buffer ring for multishot socket receives.
//
//! A ring of receive buffers registered with the main ring
//! (`IORING_REGISTER_PBUF_RING`, Linux 5.19): a multishot receive
//! (`IORING_RECV_MULTISHOT`, Linux 6.0) picks the next free buffer when data
//! arrives, so an idle connection holds no buffer and a read costs no system
//! call of its own. The kernel takes buffers at the ring's head; the executor
//! returns each one at the tail once its bytes were copied out
//! ([`BufRing::recycle`]). Only the executor's thread touches it.

use std::{
    alloc::{self, Layout},
    cell::Cell,
    io,
    os::unix::io::RawFd,
    ptr::NonNull,
    sync::atomic::{AtomicU16, Ordering},
};

/// `IORING_REGISTER_PBUF_RING` (`include/uapi/linux/io_uring.h`).
const IORING_REGISTER_PBUF_RING: libc::c_uint = 22;

/// `struct io_uring_buf`: one ring entry. The first entry's `resv` is the
/// ring's tail, written by the application.
#[repr(C)]
struct IoUringBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// `struct io_uring_buf_reg`.
#[repr(C)]
struct IoUringBufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

/// The buffer ring and the buffers it hands out.
#[derive(Debug)]
pub(crate) struct BufRing {
    ring: NonNull<IoUringBuf>,
    ring_layout: Layout,
    buffers: NonNull<u8>,
    buffers_layout: Layout,
    mask: u16,
    buffer_bytes: usize,
    /// The next tail to publish (kept here: only this thread writes it).
    tail: Cell<u16>,
    bgid: u16,
    /// Receives that ended because no buffer was free (`ENOBUFS`).
    exhausted: Cell<u64>,
    /// Buffers handed out by the kernel and not yet given back.
    held: Cell<u32>,
}

impl BufRing {
    /// Registers `entries` (a power of two, at most 32,768) buffers of
    /// `buffer_bytes` each as buffer group `bgid` of the ring `ring_fd`, every
    /// buffer free. Fails where the kernel lacks provided-buffer rings.
    pub(crate) fn register(
        ring_fd: RawFd,
        entries: u16,
        buffer_bytes: usize,
        bgid: u16,
    ) -> io::Result<BufRing> {
        if !entries.is_power_of_two() || entries > 1 << 15 || buffer_bytes == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let invalid = |_| io::Error::from_raw_os_error(libc::EINVAL);
        let ring_layout =
            Layout::from_size_align(entries as usize * std::mem::size_of::<IoUringBuf>(), 4096)
                .map_err(invalid)?;
        let buffers_layout =
            Layout::from_size_align(entries as usize * buffer_bytes, 64).map_err(invalid)?;
        // SAFETY: both layouts have a non-zero size.
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) } as *mut IoUringBuf)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let Some(buffers) = NonNull::new(unsafe { alloc::alloc(buffers_layout) }) else {
            // SAFETY: allocated above with this layout.
            unsafe { alloc::dealloc(ring.as_ptr() as *mut u8, ring_layout) };
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        };
        let this = BufRing {
            ring,
            ring_layout,
            buffers,
            buffers_layout,
            mask: entries - 1,
            buffer_bytes,
            tail: Cell::new(0),
            bgid,
            exhausted: Cell::new(0),
            held: Cell::new(entries as u32),
        };
        let reg = IoUringBufReg {
            ring_addr: ring.as_ptr() as u64,
            ring_entries: entries as u32,
            bgid,
            flags: 0,
            resv: [0; 3],
        };
        // SAFETY: `reg` describes a live, page-aligned ring of `entries`
        // entries that outlives the registration (see `Drop`).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring_fd,
                IORING_REGISTER_PBUF_RING,
                &reg as *const IoUringBufReg,
                1,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        for bid in 0..entries {
            this.recycle(bid);
        }
        Ok(this)
    }

    /// The buffer group id to name in a receive with `IOSQE_BUFFER_SELECT`.
    pub(crate) fn group(&self) -> u16 {
        self.bgid
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled and
    /// handed to us in a completion; valid until it is recycled.
    pub(crate) fn data(&self, bid: u16, len: usize) -> &[u8] {
        let bid = (bid & self.mask) as usize;
        let len = len.min(self.buffer_bytes);
        // SAFETY: the range lies inside the buffers' allocation, and the
        // kernel does not write a buffer between handing it out and its
        // return through `recycle`.
        unsafe { std::slice::from_raw_parts(self.buffers.as_ptr().add(bid * self.buffer_bytes), len) }
    }

    /// A receive ended for want of a free buffer.
    pub(crate) fn note_exhausted(&self) {
        self.exhausted.set(self.exhausted.get() + 1);
    }

    /// How many receives ended for want of a free buffer.
    pub(crate) fn exhausted(&self) -> u64 {
        self.exhausted.get()
    }

    /// The kernel handed a buffer out (a completion with
    /// `IORING_CQE_F_BUFFER`).
    pub(crate) fn note_taken(&self) {
        self.held.set(self.held.get() + 1);
    }

    /// Buffers handed out and not yet given back: 0 whenever every
    /// connection has read what it received.
    pub(crate) fn held(&self) -> u32 {
        self.held.get()
    }

    /// Gives buffer `bid` back to the kernel at the ring's tail.
    pub(crate) fn recycle(&self, bid: u16) {
        let bid = bid & self.mask;
        let tail = self.tail.get();
        let slot = (tail & self.mask) as usize;
        // SAFETY: `slot` is inside the ring; the kernel reads entries only
        // between its head and the published tail, and this one is past it.
        unsafe {
            let entry = self.ring.as_ptr().add(slot);
            (*entry).addr = self.buffers.as_ptr().add(bid as usize * self.buffer_bytes) as u64;
            (*entry).len = self.buffer_bytes as u32;
            (*entry).bid = bid;
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        self.held.set(self.held.get().saturating_sub(1));
        // SAFETY: the tail is the first entry's `resv` field (offset 14),
        // read by the kernel with an acquire load; this release store
        // publishes the entry written above.
        unsafe {
            let tail_ptr = (self.ring.as_ptr() as *mut u8).add(14) as *const AtomicU16;
            (*tail_ptr).store(tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    /// Runs after the ring that uses it was closed (it is a later field of
    /// the ring's owner), so the kernel holds no request that could still
    /// write into a buffer.
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts.
        unsafe {
            alloc::dealloc(self.ring.as_ptr() as *mut u8, self.ring_layout);
            alloc::dealloc(self.buffers.as_ptr(), self.buffers_layout);
        }
    }
}
