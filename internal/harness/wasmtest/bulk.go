package wasmtest

// BulkLoop is a WASI command with a memory of pages pages (its maximum
// too) whose _start repeats one bulk instruction over the whole memory
// forever: memory.fill of all of it with 7 (copy false), or memory.copy of
// its first half onto its second (copy true).
func BulkLoop(pages uint32, copy bool) []byte {
	size := pages << 16
	var op []byte
	if copy {
		op = append(sleb([]byte{opI32Const}, int32(size/2)), opI32Const, 0)
		op = append(sleb(append(op, opI32Const), int32(size/2)), opMisc, 10, 0, 0)
	} else {
		op = append([]byte{opI32Const, 0, opI32Const, 7}, opI32Const)
		op = append(sleb(op, int32(size)), opMisc, 11, 0)
	}
	body := append([]byte{0, opLoop, empty}, op...)
	body = append(body, opBr, 0, opEnd, opEnd)
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = sectionOf(out, 1, []byte{1, 0x60, 0, 0})
	out = sectionOf(out, 3, []byte{1, 0})
	out = sectionOf(out, 5, uleb(uleb([]byte{1, 0x01}, pages), pages))
	exports := append(name([]byte{2}, "memory"), 0x02, 0)
	exports = append(name(exports, "_start"), 0x00, 0)
	out = sectionOf(out, 7, exports)
	return sectionOf(out, 10, append(uleb([]byte{1}, uint32(len(body))), body...))
}

func sleb(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
