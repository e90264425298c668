#include "textflag.h"

DATA special<>+0(SB)/1, $0x22
DATA special<>+1(SB)/1, $0x5c
DATA special<>+2(SB)/1, $0x1f
GLOBL special<>(SB), RODATA|NOPTR, $3

// func skipPlainAVX2(b []byte) int
//
// 32 bytes at a time: a byte is special when it equals '"' or '\\', or
// when min(byte, 0x1f) equals it, i.e. it is a control character. Only
// VEX-encoded instructions, so no SSE/AVX transition is paid.
TEXT ·skipPlainAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	VPBROADCASTB special<>+0(SB), Y1
	VPBROADCASTB special<>+1(SB), Y3
	VPBROADCASTB special<>+2(SB), Y5
	MOVQ SI, DI
	ANDQ $~31, CX
	LEAQ (SI)(CX*1), BX

loop:
	CMPQ SI, BX
	JAE  none
	VMOVDQU   (SI), Y0
	VPCMPEQB  Y0, Y1, Y2
	VPCMPEQB  Y0, Y3, Y4
	VPMINUB   Y0, Y5, Y6
	VPCMPEQB  Y0, Y6, Y6
	VPOR      Y2, Y4, Y2
	VPOR      Y2, Y6, Y2
	VPMOVMSKB Y2, AX
	TESTL     AX, AX
	JNZ       found
	ADDQ      $32, SI
	JMP       loop

found:
	BSFL AX, AX
	SUBQ DI, SI
	ADDQ SI, AX
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

none:
	SUBQ DI, SI
	MOVQ SI, ret+24(FP)
	VZEROUPPER
	RET
