//! Just enough DER to walk private keys and SubjectPublicKeyInfo: single-byte tags, definite
//! lengths. Anything else is reported as unparsable, never panics.

/// One tag-length-value element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

pub(super) const TAG_INTEGER: u8 = 0x02;
pub(super) const TAG_BIT_STRING: u8 = 0x03;
pub(super) const TAG_OCTET_STRING: u8 = 0x04;
pub(super) const TAG_OID: u8 = 0x06;
pub(super) const TAG_SEQUENCE: u8 = 0x30;

/// Reads one element from the front of `input`, returning it and the rest.
pub(super) fn read(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags never occur in the structures we read
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    let (content, rest) = rest.split_at(length);
    Some((Element { tag, content }, rest))
}

/// Reads one element that must carry `tag`.
pub(super) fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (element, rest) = read(input)?;
    (element.tag == tag).then_some((element.content, rest))
}

/// All elements of a constructed value, in order.
pub(super) fn children(mut content: &[u8]) -> Option<Vec<Element<'_>>> {
    let mut elements = Vec::new();
    while !content.is_empty() {
        let (element, rest) = read(content)?;
        elements.push(element);
        content = rest;
    }
    Some(elements)
}

/// The bytes of a BIT STRING without its leading unused-bits count.
pub(super) fn bit_string_bytes(content: &[u8]) -> Option<&[u8]> {
    content.split_first().map(|(_, bytes)| bytes)
}

/// An INTEGER's magnitude without sign-padding zeros, for comparisons.
pub(super) fn unsigned_integer(content: &[u8]) -> &[u8] {
    let first_significant = content
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(content.len());
    &content[first_significant..]
}
