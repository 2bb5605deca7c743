//! Redis's glob matching (`stringmatchlen` in util.c), used by KEYS, SCAN
//! MATCH and pattern subscriptions: `*`, `?`, `[abc]`, `[^a-z]`, and `\`
//! escapes, byte for byte as Redis does it (including its treatment of bytes
//! above 0x7f as signed C chars in ranges).

/// Whether `string` matches `pattern`. Like Redis, a lone `*` does not match
/// the empty string here; KEYS and SCAN treat `*` as "everything" first.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, &mut skip_longer)
}

fn match_impl(pattern: &[u8], string: &[u8], skip_longer: &mut bool) -> bool {
    // Indices into the slices; `pat(i)` reads like the C code's
    // NUL-terminated buffer does past the end.
    let pat = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0usize, 0usize);
    let (plen, slen) = (pattern.len(), string.len());
    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                while p + 1 < plen && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == plen {
                    return true;
                }
                while s < slen {
                    if match_impl(&pattern[p + 1..], &string[s..], skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = pat(p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                let c = string[s];
                loop {
                    if pat(p) == b'\\' && plen - p >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if pat(p) == b']' {
                        break;
                    } else if p >= plen {
                        p -= 1;
                        break;
                    } else if plen - p >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (pattern[p] as i8, pattern[p + 2] as i8);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        let ci = c as i8;
                        if ci >= start && ci <= end {
                            matched = true;
                        }
                    } else if pattern[p] == c {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            b'\\' => {
                if plen - p >= 2 {
                    p += 1;
                }
                if pattern[p] != string[s] {
                    return false;
                }
                s += 1;
            }
            other => {
                if other != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            while pat(p) == b'*' && p < plen {
                p += 1;
            }
            break;
        }
    }
    p >= plen && s == slen
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_follows_redis_stringmatchlen() {
        let yes: &[(&[u8], &[u8])] = &[
            (b"*", b"anything"),
            (b"h?llo", b"hello"),
            (b"h*llo", b"heeeello"),
            (b"h[ae]llo", b"hallo"),
            (b"h[^e]llo", b"hallo"),
            (b"h[a-b]llo", b"hbllo"),
            (b"h[b-a]llo", b"hallo"),
            (b"h\\*llo", b"h*llo"),
            (b"user:*:name", b"user:42:name"),
            (b"**a", b"a"),
            (b"a*", b"a"),
            (b"[\\]]", b"]"),
            (b"a\\", b"a\\"),
            (b"\xff*", b"\xff\x00"),
        ];
        for (p, s) in yes {
            assert!(matches(p, s), "{:?} should match {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(s));
        }
        let no: &[(&[u8], &[u8])] = &[
            (b"h?llo", b"hllo"),
            (b"h[^e]llo", b"hello"),
            (b"h[a-b]llo", b"hcllo"),
            (b"h\\*llo", b"hello"),
            (b"a", b""),
            (b"", b"a"),
            (b"?", b""),
            (b"a*b", b"acbd"),
            // As in Redis: callers special-case a lone "*" (KEYS *, SCAN),
            // which is how the empty key still shows up there.
            (b"*", b""),
        ];
        for (p, s) in no {
            assert!(!matches(p, s), "{:?} should not match {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(s));
        }
    }
}
