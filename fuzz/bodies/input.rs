//! A reader of fuzz input bytes as a stream of small decisions. Reading past the end
//! yields zeros, so every byte string decodes to something and a shorter input is a
//! prefix of the same decisions (which keeps minimised inputs meaningful).
#![allow(dead_code)]

/// The unread part of a fuzz input.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// A length (one byte, or two when the first is 255) then that many bytes, at most `max`.
    pub fn sized(&mut self, max: usize) -> &'a [u8] {
        let mut n = usize::from(self.byte());
        if n == 255 {
            n = usize::from(self.u16());
        }
        self.bytes(n.min(max))
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// One of `items` (the first when the input is exhausted).
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[usize::from(self.byte()) % items.len()]
    }
}
