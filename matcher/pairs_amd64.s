#include "textflag.h"

DATA lownib<>+0(SB)/4, $0x0f0f0f0f
GLOBL lownib<>(SB), RODATA|NOPTR, $4

// LOOKUP leaves in m the bucket bits that the bytes of x have in the
// nibble tables lo and hi; Y13 holds 0x0f in every byte. Only VEX-encoded
// instructions are used: a legacy SSE one with the upper halves dirty
// costs a state transition on some processors.
#define LOOKUP(x, lo, hi, m, t1, t2) \
	VPAND   x, Y13, t1; \
	VPSRLW  $4, x, t2; \
	VPAND   t2, Y13, t2; \
	VPSHUFB t1, lo, t1; \
	VPSHUFB t2, hi, t2; \
	VPAND   t1, t2, m

// BUCKETS leaves in m the bucket bits of the 32 positions whose bytes are
// x and the next bytes y: Y8-Y11 hold the nibble tables (first byte low,
// high; second byte low, high) in both lanes.
#define BUCKETS(x, y, m, t1, t2) \
	LOOKUP(x, Y8, Y9, m, t1, t2); \
	LOOKUP(y, Y10, Y11, t1, t1, t2); \
	VPAND t1, m, m

// func pairIndexAVX2(t []byte, nib *[64]byte) int
TEXT ·pairIndexAVX2(SB), NOSPLIT, $0-40
	MOVQ t_base+0(FP), SI
	MOVQ t_len+8(FP), CX
	MOVQ nib+24(FP), DX
	VBROADCASTI128 (DX), Y8
	VBROADCASTI128 16(DX), Y9
	VBROADCASTI128 32(DX), Y10
	VBROADCASTI128 48(DX), Y11
	VPBROADCASTD lownib<>(SB), Y13
	VPXOR Y15, Y15, Y15
	MOVQ SI, DI
	// Positions run from SI to BX, exclusive; the last one's pair ends
	// at the last byte of t.
	LEAQ -1(SI)(CX*1), BX
	LEAQ -64(BX), R8

loop64:
	CMPQ SI, R8
	JA   tail
	VMOVDQU (SI), Y0
	VMOVDQU 1(SI), Y1
	VMOVDQU 32(SI), Y4
	VMOVDQU 33(SI), Y5
	BUCKETS(Y0, Y1, Y2, Y3, Y6)
	BUCKETS(Y4, Y5, Y7, Y3, Y6)
	VPOR   Y2, Y7, Y14
	VPTEST Y14, Y14
	JNZ    found64
	ADDQ   $64, SI
	JMP    loop64

found64:
	VPCMPEQB  Y2, Y15, Y2
	VPMOVMSKB Y2, AX
	NOTL      AX
	TESTL     AX, AX
	JNZ       found
	ADDQ      $32, SI
	VPCMPEQB  Y7, Y15, Y7
	VPMOVMSKB Y7, AX
	NOTL      AX
	JMP       found

tail:
	// Fewer than 64 positions are left: 32 at a time, the last 32
	// overlapping positions already searched, which held none.
	LEAQ -32(BX), R8

tail32:
	CMPQ SI, R8
	JAE  last
	VMOVDQU (SI), Y0
	VMOVDQU 1(SI), Y1
	BUCKETS(Y0, Y1, Y2, Y3, Y6)
	VPTEST Y2, Y2
	JNZ    found32
	ADDQ   $32, SI
	JMP    tail32

last:
	MOVQ R8, SI
	VMOVDQU (SI), Y0
	VMOVDQU 1(SI), Y1
	BUCKETS(Y0, Y1, Y2, Y3, Y6)
	VPTEST Y2, Y2
	JNZ    found32
	MOVQ   $-1, ret+32(FP)
	VZEROUPPER
	RET

found32:
	VPCMPEQB  Y2, Y15, Y2
	VPMOVMSKB Y2, AX
	NOTL      AX

found:
	BSFL AX, AX
	SUBQ DI, SI
	ADDQ SI, AX
	MOVQ AX, ret+32(FP)
	VZEROUPPER
	RET
