#include "textflag.h"

// FOUR_INPUTS loads into R8–R11 the data pointers of the first four
// slices of the [][]float32 at SI, each advanced by AX bytes.
#define FOUR_INPUTS \
	MOVQ 0(SI), R8; ADDQ AX, R8; \
	MOVQ 24(SI), R9; ADDQ AX, R9; \
	MOVQ 48(SI), R10; ADDQ AX, R10; \
	MOVQ 72(SI), R11; ADDQ AX, R11

// MEAN_OF_MIDDLES sets yout to float32((float64(lo) + float64(hi)) / 2)
// for the eight lanes of ylo and yhi (xlo, xhi, xout: their lower
// halves), Y13 holding 2.0 in float64; it overwrites ylo and yhi, and Y15.
#define MEAN_OF_MIDDLES(ylo, xlo, yhi, xhi, yout, xout) \
	VCVTPS2PD xlo, yout; \
	VCVTPS2PD xhi, Y15; \
	VADDPD Y15, yout, yout; \
	VDIVPD Y13, yout, yout; \
	VCVTPD2PSY yout, xout; \
	VEXTRACTF128 $1, ylo, xlo; \
	VEXTRACTF128 $1, yhi, xhi; \
	VCVTPS2PD xlo, ylo; \
	VCVTPS2PD xhi, yhi; \
	VADDPD yhi, ylo, ylo; \
	VDIVPD Y13, ylo, ylo; \
	VCVTPD2PSY ylo, xlo; \
	VINSERTF128 $1, xlo, yout, yout

// AVX2 kernels of the codec (kernels_amd64.go says what each computes).
// Each does whole groups of eight float32s and ends with VZEROUPPER, so
// the scalar SSE code that follows pays no penalty for dirty upper bits.

// func signMagnitudesAVX2(dst, x, carried []float32) (maxBits, minBits1 uint32, sum float64)
TEXT ·signMagnitudesAVX2(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ carried_base+48(FP), DX
	MOVQ carried_len+56(FP), R8
	ANDQ $~7, CX
	SHLQ $2, CX                  // bytes
	MOVL $0x7fffffff, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14        // magnitude mask
	MOVL $1, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13        // ones
	VPXOR Y0, Y0, Y0             // largest magnitude bits
	VMOVDQU Y14, Y1              // smallest magnitude bits − 1
	VXORPD Y2, Y2, Y2            // sums of the low four lanes
	VXORPD Y3, Y3, Y3            // and of the high four
	XORQ BX, BX
sm_loop:
	CMPQ BX, CX
	JGE sm_done
	VMOVUPS (SI)(BX*1), Y4
	TESTQ R8, R8
	JZ sm_nocarry
	VADDPS (DX)(BX*1), Y4, Y4
	VMOVUPS Y4, (DI)(BX*1)
sm_nocarry:
	VPAND Y14, Y4, Y4
	VPMAXUD Y4, Y0, Y0
	VPSUBD Y13, Y4, Y5
	VPMINUD Y5, Y1, Y1
	VCVTPS2PD X4, Y6
	VEXTRACTF128 $1, Y4, X7
	VCVTPS2PD X7, Y7
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	ADDQ $32, BX
	JMP sm_loop
sm_done:
	VEXTRACTI128 $1, Y0, X4
	VPMAXUD X4, X0, X0
	VPSHUFD $0x4e, X0, X4
	VPMAXUD X4, X0, X0
	VPSHUFD $0xb1, X0, X4
	VPMAXUD X4, X0, X0
	VMOVD X0, AX
	MOVL AX, maxBits+72(FP)
	VEXTRACTI128 $1, Y1, X4
	VPMINUD X4, X1, X1
	VPSHUFD $0x4e, X1, X4
	VPMINUD X4, X1, X1
	VPSHUFD $0xb1, X1, X4
	VPMINUD X4, X1, X1
	VMOVD X1, AX
	MOVL AX, minBits1+76(FP)
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VUNPCKHPD X2, X2, X3
	VADDSD X3, X2, X2
	VMOVSD X2, sum+80(FP)
	VZEROUPPER
	RET

// func signCodesAVX2(values []int8, corrected []float32, scale float32)
TEXT ·signCodesAVX2(SB), NOSPLIT, $0-52
	MOVQ values_base+0(FP), SI
	MOVQ corrected_base+24(FP), DI
	MOVQ corrected_len+32(FP), CX
	ANDQ $~7, CX
	VBROADCASTSS scale+48(FP), Y14   // the step of a positive value
	MOVL $0x80000000, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	VXORPS Y13, Y14, Y13             // of a negative one: −scale
	VXORPS Y12, Y12, Y12             // zero
	LEAQ ·signTable(SB), R9
	XORQ BX, BX
sc_loop:
	CMPQ BX, CX
	JGE sc_done
	VMOVUPS (DI)(BX*4), Y0
	VCMPPS $1, Y12, Y0, Y1           // v < 0 (ordered: the block has no NaN)
	VBLENDVPS Y1, Y13, Y14, Y2       // −scale where negative, scale elsewhere
	VSUBPS Y2, Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
	VMOVMSKPS Y1, AX
	MOVQ (R9)(AX*8), DX
	MOVQ DX, (SI)(BX*1)
	ADDQ $8, BX
	JMP sc_loop
sc_done:
	VZEROUPPER
	RET

// func decodeWordsAVX2(dst []float32, src []byte, stride int, grid *[16]float32, width int)
TEXT ·decodeWordsAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8
	SHRQ $3, R8                      // groups of eight
	MOVQ src_base+24(FP), SI
	MOVQ stride+48(FP), R9
	MOVQ grid+56(FP), DX
	MOVQ width+64(FP), CX
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10            // a code's mask
	SHLQ $5, CX
	LEAQ ·codeShifts(SB), AX
	VMOVDQU (AX)(CX*1), Y11          // lane j shifts by j·width
	VMOVUPS (DX), Y8                 // grid[0:8]
	VMOVUPS 32(DX), Y9               // grid[8:16]
dw_loop:
	TESTQ R8, R8
	JZ dw_done
	VPBROADCASTD (SI), Y0            // the group's codes in the low 8·width bits
	VPSRLVD Y11, Y0, Y0
	VPAND Y10, Y0, Y0                // the eight codes
	VPERMPS Y8, Y0, Y1               // grid[code & 7]
	VPERMPS Y9, Y0, Y2               // grid[8 + code & 7]
	VPSLLD $28, Y0, Y3               // code & 8 in the sign bit
	VBLENDVPS Y3, Y2, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, DI
	ADDQ R9, SI
	DECQ R8
	JMP dw_loop
dw_done:
	VZEROUPPER
	RET

// func meanAVX2(dst []float32, inputs [][]float32)
TEXT ·meanAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ inputs_base+24(FP), SI
	MOVQ inputs_len+32(FP), R8
	VCVTSI2SDQ R8, X14, X14
	VBROADCASTSD X14, Y14            // k
	XORQ BX, BX
mn_loop:
	CMPQ BX, CX
	JGE mn_done
	VXORPD Y0, Y0, Y0                // from +0, as the scalar sum
	VXORPD Y1, Y1, Y1
	MOVQ SI, R9
	MOVQ R8, R10
mn_input:
	MOVQ (R9), AX
	VCVTPS2PD (AX)(BX*4), Y2
	VCVTPS2PD 16(AX)(BX*4), Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $24, R9
	DECQ R10
	JNZ mn_input
	VDIVPD Y14, Y0, Y0
	VDIVPD Y14, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1
	VINSERTF128 $1, X1, Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ $8, BX
	JMP mn_loop
mn_done:
	VZEROUPPER
	RET

// func clipPass4AVX2(centre []float32, inputs [][]float32, scales, sums *[4]float64, measure bool)
TEXT ·clipPass4AVX2(SB), NOSPLIT, $0-65
	MOVQ centre_base+0(FP), DI
	MOVQ centre_len+8(FP), CX
	ANDQ $~3, CX
	SHLQ $2, CX                      // bytes
	MOVQ inputs_base+24(FP), SI
	XORQ AX, AX
	FOUR_INPUTS
	MOVQ scales+48(FP), AX
	VBROADCASTSD 0(AX), Y8
	VBROADCASTSD 8(AX), Y9
	VBROADCASTSD 16(AX), Y10
	VBROADCASTSD 24(AX), Y11
	MOVQ $4, AX
	VCVTSI2SDQ AX, X12, X12
	VBROADCASTSD X12, Y12            // 4
	MOVQ sums+56(FP), DX
	VMOVUPD (DX), Y13                // the four sums, one lane per input
	MOVBLZX measure+64(FP), R12
	XORQ BX, BX
cp_loop:
	CMPQ BX, CX
	JGE cp_done
	VCVTPS2PD (DI)(BX*1), Y0         // c, four coordinates
	VCVTPS2PD (R8)(BX*1), Y1         // x0..x3
	VCVTPS2PD (R9)(BX*1), Y2
	VCVTPS2PD (R10)(BX*1), Y3
	VCVTPS2PD (R11)(BX*1), Y4
	VXORPD Y6, Y6, Y6                // step from +0, the inputs in order
	VSUBPD Y0, Y1, Y5
	VMULPD Y8, Y5, Y5
	VADDPD Y5, Y6, Y6
	VSUBPD Y0, Y2, Y5
	VMULPD Y9, Y5, Y5
	VADDPD Y5, Y6, Y6
	VSUBPD Y0, Y3, Y5
	VMULPD Y10, Y5, Y5
	VADDPD Y5, Y6, Y6
	VSUBPD Y0, Y4, Y5
	VMULPD Y11, Y5, Y5
	VADDPD Y5, Y6, Y6
	VDIVPD Y12, Y6, Y6
	VADDPD Y6, Y0, Y6                // c + step/4
	VCVTPD2PSY Y6, X6
	VMOVUPS X6, (DI)(BX*1)           // the moved centre
	TESTQ R12, R12
	JZ cp_next
	VCVTPS2PD X6, Y6
	VSUBPD Y6, Y1, Y1
	VMULPD Y1, Y1, Y1                // squared distances of input 0 over the four coordinates
	VSUBPD Y6, Y2, Y2
	VMULPD Y2, Y2, Y2
	VSUBPD Y6, Y3, Y3
	VMULPD Y3, Y3, Y3
	VSUBPD Y6, Y4, Y4
	VMULPD Y4, Y4, Y4
	// Transpose, so that each vector holds one coordinate of the four
	// inputs, and add the coordinates in order.
	VUNPCKLPD Y2, Y1, Y5
	VUNPCKHPD Y2, Y1, Y1
	VUNPCKLPD Y4, Y3, Y2
	VUNPCKHPD Y4, Y3, Y3
	VPERM2F128 $0x20, Y2, Y5, Y4     // coordinate 0
	VPERM2F128 $0x31, Y2, Y5, Y5     // coordinate 2
	VPERM2F128 $0x20, Y3, Y1, Y2     // coordinate 1
	VPERM2F128 $0x31, Y3, Y1, Y1     // coordinate 3
	VADDPD Y4, Y13, Y13
	VADDPD Y2, Y13, Y13
	VADDPD Y5, Y13, Y13
	VADDPD Y1, Y13, Y13
cp_next:
	ADDQ $16, BX
	JMP cp_loop
cp_done:
	VMOVUPD Y13, (DX)
	VZEROUPPER
	RET

// func dequantizeInt8AVX2(dst []float32, src []byte, scale float32)
TEXT ·dequantizeInt8AVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ src_base+24(FP), SI
	VBROADCASTSS scale+48(FP), Y8
	XORQ BX, BX
dq_loop:
	CMPQ BX, CX
	JGE dq_done
	VPMOVSXBD (SI)(BX*1), Y0
	VCVTDQ2PS Y0, Y0
	VMULPS Y8, Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ $8, BX
	JMP dq_loop
dq_done:
	VZEROUPPER
	RET

// func sums4AVX2(sums *[4]float64, inputs [][]float32, with []float32, lo, n, mode int)
//
// Adds to sums[i], coordinate by coordinate for j in [0, n&^3), the
// square of inputs[i][lo+j] (mode 0), its product with with[j] (mode 1)
// or its squared distance to with[j] (mode 2), four coordinates per
// vector and, after a transpose, the four sums one per lane.
TEXT ·sums4AVX2(SB), NOSPLIT, $0-80
	MOVQ sums+0(FP), DX
	MOVQ inputs_base+8(FP), SI
	MOVQ with_base+32(FP), DI
	MOVQ lo+56(FP), AX
	SHLQ $2, AX
	FOUR_INPUTS
	MOVQ n+64(FP), CX
	ANDQ $~3, CX
	SHLQ $2, CX                      // bytes
	MOVQ mode+72(FP), R12
	VMOVUPD (DX), Y13
	XORQ BX, BX
s4_loop:
	CMPQ BX, CX
	JGE s4_done
	VCVTPS2PD (R8)(BX*1), Y1
	VCVTPS2PD (R9)(BX*1), Y2
	VCVTPS2PD (R10)(BX*1), Y3
	VCVTPS2PD (R11)(BX*1), Y4
	CMPQ R12, $1
	JEQ s4_products
	JGT s4_distances
	VMULPD Y1, Y1, Y1
	VMULPD Y2, Y2, Y2
	VMULPD Y3, Y3, Y3
	VMULPD Y4, Y4, Y4
	JMP s4_add
s4_products:
	VCVTPS2PD (DI)(BX*1), Y0
	VMULPD Y0, Y1, Y1
	VMULPD Y0, Y2, Y2
	VMULPD Y0, Y3, Y3
	VMULPD Y0, Y4, Y4
	JMP s4_add
s4_distances:
	VCVTPS2PD (DI)(BX*1), Y0
	VSUBPD Y0, Y1, Y1
	VMULPD Y1, Y1, Y1
	VSUBPD Y0, Y2, Y2
	VMULPD Y2, Y2, Y2
	VSUBPD Y0, Y3, Y3
	VMULPD Y3, Y3, Y3
	VSUBPD Y0, Y4, Y4
	VMULPD Y4, Y4, Y4
s4_add:
	VUNPCKLPD Y2, Y1, Y5
	VUNPCKHPD Y2, Y1, Y1
	VUNPCKLPD Y4, Y3, Y2
	VUNPCKHPD Y4, Y3, Y3
	VPERM2F128 $0x20, Y2, Y5, Y4     // coordinate 0 of the four inputs
	VPERM2F128 $0x31, Y2, Y5, Y5     // coordinate 2
	VPERM2F128 $0x20, Y3, Y1, Y2     // coordinate 1
	VPERM2F128 $0x31, Y3, Y1, Y1     // coordinate 3
	VADDPD Y4, Y13, Y13
	VADDPD Y2, Y13, Y13
	VADDPD Y5, Y13, Y13
	VADDPD Y1, Y13, Y13
	ADDQ $16, BX
	JMP s4_loop
s4_done:
	VMOVUPD Y13, (DX)
	VZEROUPPER
	RET

// func median4AVX2(dst []float32, inputs [][]float32, lo int) int
//
// medianOf4 of inputs[0..3][lo+j] into dst[j] in groups of eight; it
// stops before the first group with a NaN or a column whose middle two
// values are both zero and that holds a −0 (the caller's scalar loop
// decides those) and returns how many it did. Middle zeros in a column
// without −0 are +0 both, their mean +0, as zeroMedian says.
TEXT ·median4AVX2(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ inputs_base+24(FP), SI
	MOVQ lo+48(FP), AX
	SHLQ $2, AX
	FOUR_INPUTS
	VXORPS Y12, Y12, Y12             // zero
	MOVQ $0x4000000000000000, AX
	MOVQ AX, X13
	VBROADCASTSD X13, Y13            // 2.0
	MOVL $0x80000000, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14            // −0
	XORQ BX, BX
md_loop:
	CMPQ BX, CX
	JGE md_done
	VMOVUPS (R8)(BX*4), Y0
	VMOVUPS (R9)(BX*4), Y1
	VMOVUPS (R10)(BX*4), Y2
	VMOVUPS (R11)(BX*4), Y3
	VCMPPS $3, Y1, Y0, Y4            // unordered: a NaN among x0, x1
	VCMPPS $3, Y3, Y2, Y5
	VORPS Y5, Y4, Y4
	VMINPS Y1, Y0, Y5
	VMINPS Y3, Y2, Y6
	VMAXPS Y6, Y5, Y5                // lower middle
	VMAXPS Y1, Y0, Y6
	VMAXPS Y3, Y2, Y7
	VMINPS Y7, Y6, Y6                // upper middle
	VCMPPS $0, Y12, Y5, Y7
	VCMPPS $0, Y12, Y6, Y8
	VANDPS Y8, Y7, Y7                // both zero
	VPCMPEQD Y14, Y0, Y9             // a −0 in the column
	VPCMPEQD Y14, Y1, Y10
	VPOR Y10, Y9, Y9
	VPCMPEQD Y14, Y2, Y10
	VPOR Y10, Y9, Y9
	VPCMPEQD Y14, Y3, Y10
	VPOR Y10, Y9, Y9
	VANDPS Y9, Y7, Y7
	VORPS Y7, Y4, Y4
	VMOVMSKPS Y4, AX
	TESTL AX, AX
	JNZ md_done
	MEAN_OF_MIDDLES(Y5, X5, Y6, X6, Y7, X7)
	VMOVUPS Y7, (DI)(BX*4)
	ADDQ $8, BX
	JMP md_loop
md_done:
	MOVQ BX, ret+56(FP)
	VZEROUPPER
	RET

// func copyInt8AVX2(dst []byte, src []int8)
// Copies the first len(src)&^31 bytes, 32 at a time.
TEXT ·copyInt8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	ANDQ $~31, CX
	XORQ BX, BX
ci_loop:
	CMPQ BX, CX
	JGE ci_done
	VMOVDQU (SI)(BX*1), Y0
	VMOVDQU Y0, (DI)(BX*1)
	ADDQ $32, BX
	JMP ci_loop
ci_done:
	VZEROUPPER
	RET

// func dequantizeInt8sAVX2(dst []float32, src []int8, scale float32)
// dequantizeInt8AVX2 for int8 values held as []int8: the same layout.
TEXT ·dequantizeInt8sAVX2(SB), NOSPLIT, $0-52
	JMP ·dequantizeInt8AVX2(SB)

// func subtractAVX2(dst, a, b []float32) int
//
// dst = a − b in groups of eight; it stops before the first group with a
// difference that is not finite and returns how many it did.
TEXT ·subtractAVX2(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), DX
	MOVL $0x7f800000, AX
	MOVQ AX, X8
	VPBROADCASTD X8, Y8              // the exponent bits: all set is ±Inf or NaN
	XORQ BX, BX
sb_loop:
	CMPQ BX, CX
	JGE sb_done
	VMOVUPS (SI)(BX*4), Y0
	VSUBPS (DX)(BX*4), Y0, Y0
	VPAND Y8, Y0, Y1
	VPCMPEQD Y8, Y1, Y1
	VMOVMSKPS Y1, AX
	TESTL AX, AX
	JNZ sb_done
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ $8, BX
	JMP sb_loop
sb_done:
	MOVQ BX, ret+72(FP)
	VZEROUPPER
	RET

// func dequantizeInt4AVX2(dst []float32, src []byte, scale float32)
//
// dst[2i], dst[2i+1] = scale × the signed low and high nibbles of src[i],
// for the first len(dst)&^7 elements: each byte is widened to a quadword,
// shifted so that the low nibble tops the low doubleword and the high
// nibble sits at the bottom of the high one, which a second shift tops;
// an arithmetic shift right by 28 then extends both signs.
TEXT ·dequantizeInt4AVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ src_base+24(FP), SI
	VBROADCASTSS scale+48(FP), Y8
	MOVQ $0x0000001c00000000, AX     // shift the high doublewords by 28
	MOVQ AX, X9
	VPBROADCASTQ X9, Y9
	XORQ BX, BX                      // elements
	XORQ DX, DX                      // bytes
d4_loop:
	CMPQ BX, CX
	JGE d4_done
	VPMOVZXBQ (SI)(DX*1), Y0
	VPSLLQ $28, Y0, Y0
	VPSLLVD Y9, Y0, Y0
	VPSRAD $28, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VMULPS Y8, Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
	ADDQ $8, BX
	ADDQ $4, DX
	JMP d4_loop
d4_done:
	VZEROUPPER
	RET

// func checkInt4AVX2(values []byte) int
//
// Returns how many of the first len(values)&^31 bytes, in groups of 32,
// come before the first group with a nibble 0x8.
TEXT ·checkInt4AVX2(SB), NOSPLIT, $0-32
	MOVQ values_base+0(FP), SI
	MOVQ values_len+8(FP), CX
	ANDQ $~31, CX
	MOVL $0x0f0f0f0f, AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10
	MOVL $0x08080808, AX
	MOVQ AX, X11
	VPBROADCASTD X11, Y11
	XORQ BX, BX
c4_loop:
	CMPQ BX, CX
	JGE c4_done
	VMOVDQU (SI)(BX*1), Y0
	VPAND Y10, Y0, Y1
	VPCMPEQB Y11, Y1, Y1
	VPSRLW $4, Y0, Y2
	VPAND Y10, Y2, Y2
	VPCMPEQB Y11, Y2, Y2
	VPOR Y2, Y1, Y1
	VPTEST Y1, Y1
	JNZ c4_done
	ADDQ $32, BX
	JMP c4_loop
c4_done:
	MOVQ BX, ret+24(FP)
	VZEROUPPER
	RET

// func encodeInt4AVX2(dst []byte, values []int8)
//
// Packs the first len(values)&^31 values, clamped to −7..7, two to a
// byte (the first in the low nibble), 32 values to 16 bytes: in each
// 16-bit word (first value's nibble low, second's high byte) the word
// shifted right by 4 puts the second nibble above the first.
TEXT ·encodeInt4AVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ values_base+24(FP), SI
	MOVQ values_len+32(FP), CX
	ANDQ $~31, CX
	MOVL $0x07070707, AX
	MOVQ AX, X10
	VPBROADCASTD X10, Y10            // 7
	MOVL $0xf9f9f9f9, AX
	MOVQ AX, X11
	VPBROADCASTD X11, Y11            // −7
	MOVL $0x0f0f0f0f, AX
	MOVQ AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x00ff00ff, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	XORQ BX, BX                      // values
	XORQ DX, DX                      // bytes out
e4_loop:
	CMPQ BX, CX
	JGE e4_done
	VMOVDQU (SI)(BX*1), Y0
	VPMINSB Y10, Y0, Y0
	VPMAXSB Y11, Y0, Y0
	VPAND Y12, Y0, Y0                // nibbles
	VPSRLW $4, Y0, Y1                // second nibble << 4 in each word's low byte
	VPOR Y1, Y0, Y0
	VPAND Y13, Y0, Y0
	VPACKUSWB Y0, Y0, Y0             // per 128-bit lane: its 8 bytes, twice
	VPERMQ $0x08, Y0, Y0             // lanes' first quadwords together
	VMOVDQU X0, (DI)(DX*1)
	ADDQ $32, BX
	ADDQ $16, DX
	JMP e4_loop
e4_done:
	VZEROUPPER
	RET

// func topKMagnitudesAVX2(mag []uint32, corrected, x, carried []float32, guess uint32, passed []byte) (maxBits uint32)
//
// For the first len(x)&^7 elements: corrected = x + carried (x when
// carried is nil), mag = its magnitude bits, passed[g] = the mask of
// group g's elements with a magnitude of at least guess (as unsigned
// integers); returns the largest magnitude bits.
TEXT ·topKMagnitudesAVX2(SB), NOSPLIT, $0-132
	MOVQ mag_base+0(FP), DI
	MOVQ corrected_base+24(FP), SI
	MOVQ x_base+48(FP), DX
	MOVQ x_len+56(FP), CX
	ANDQ $~7, CX
	MOVQ carried_base+72(FP), R8
	MOVQ carried_len+80(FP), R10
	MOVQ passed_base+104(FP), R9
	MOVL $0x7fffffff, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15            // magnitude mask
	MOVL guess+96(FP), AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	VPXOR Y12, Y12, Y12              // largest
	XORQ BX, BX
	XORQ R11, R11                    // group
tm_loop:
	CMPQ BX, CX
	JGE tm_done
	VMOVUPS (DX)(BX*4), Y0
	TESTQ R10, R10
	JZ tm_plain
	VADDPS (R8)(BX*4), Y0, Y0
tm_plain:
	VMOVUPS Y0, (SI)(BX*4)
	VPAND Y15, Y0, Y0                // m
	VMOVDQU Y0, (DI)(BX*4)
	VPMAXUD Y0, Y12, Y12
	VPMAXUD Y14, Y0, Y2
	VPCMPEQD Y0, Y2, Y2              // m ≥ guess
	VMOVMSKPS Y2, AX
	MOVB AX, (R9)(R11*1)
	ADDQ $8, BX
	INCQ R11
	JMP tm_loop
tm_done:
	VEXTRACTI128 $1, Y12, X1
	VPMAXUD X1, X12, X12
	VPSHUFD $0x4e, X12, X1
	VPMAXUD X1, X12, X12
	VPSHUFD $0xb1, X12, X1
	VPMAXUD X1, X12, X12
	VMOVD X12, AX
	MOVL AX, maxBits+128(FP)
	VZEROUPPER
	RET

// func roundF32AVX2(values []int8, x []float32, p *roundParams32, residual bool) int
//
// values = clamp(round(x·inverse)) in groups of eight, and with residual
// x -= scale·value, in float32: t = x·inverse rounded to float32 lies
// within 2⁻¹⁶ of the scalar loop's float64 product (|t| ≤ 128, inverse
// within 2⁻¹⁰⁰..2¹⁰⁰), so where |t − r| ≤ nearHalf32 = ½ − 2⁻¹¹ both
// round to the same integer and the scalar loop does not divide. It
// stops before the first group with a product nearer a half (the caller
// does that group) and returns how many elements it did.
TEXT ·roundF32AVX2(SB), NOSPLIT, $0-72
	MOVQ values_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ x_len+32(FP), CX
	ANDQ $~7, CX
	MOVQ p+48(FP), DX
	MOVBLZX residual+56(FP), R12
	VBROADCASTSS 0(DX), Y8           // inverse
	VBROADCASTSS 4(DX), Y9           // nearHalf32
	VBROADCASTSS 8(DX), Y10          // levels
	VBROADCASTSS 12(DX), Y11         // −levels
	VBROADCASTSS 16(DX), Y13         // scale
	MOVL $0x7fffffff, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14            // magnitude mask
	XORQ BX, BX
rf_loop:
	CMPQ BX, CX
	JGE rf_done
	VMOVUPS (DI)(BX*4), Y0           // x
	VMULPS Y8, Y0, Y1                // t
	VROUNDPS $0, Y1, Y2              // r, to even
	VSUBPS Y2, Y1, Y3
	VANDPS Y14, Y3, Y3
	VCMPPS $0x1e, Y9, Y3, Y3         // |t − r| > nearHalf32
	VMOVMSKPS Y3, AX
	TESTL AX, AX
	JNZ rf_done
	VMINPS Y10, Y2, Y2
	VMAXPS Y11, Y2, Y2
	VCVTPS2DQ Y2, Y4                 // whole already: exact
	VEXTRACTI128 $1, Y4, X5
	VPACKSSDW X5, X4, X6
	VPACKSSWB X6, X6, X6
	VMOVQ X6, (SI)(BX*1)
	TESTQ R12, R12
	JZ rf_next
	VCVTDQ2PS Y4, Y5                 // the value as float32 (+0, never −0)
	VMULPS Y13, Y5, Y5               // scale·value in float32
	VSUBPS Y5, Y0, Y0
	VMOVUPS Y0, (DI)(BX*4)
rf_next:
	ADDQ $8, BX
	JMP rf_loop
rf_done:
	MOVQ BX, ret+64(FP)
	VZEROUPPER
	RET

// func addSteps4AVX2(step []float64, inputs [][]float32, scales *[4]float64, centre []float32, lo int)
//
// Adds to step[j], for j in [0, len(step)&^3), scales[i]·(inputs[i][lo+j]
// − centre[j]) for the four inputs in order, four coordinates per vector:
// addSteps's loop over a group of four inputs.
TEXT ·addSteps4AVX2(SB), NOSPLIT, $0-88
	MOVQ step_base+0(FP), DX
	MOVQ step_len+8(FP), CX
	ANDQ $~3, CX
	SHLQ $2, CX                      // bytes of float32; step is read at twice the offset
	MOVQ inputs_base+24(FP), SI
	MOVQ lo+80(FP), AX
	SHLQ $2, AX
	FOUR_INPUTS
	MOVQ scales+48(FP), AX
	VBROADCASTSD 0(AX), Y8
	VBROADCASTSD 8(AX), Y9
	VBROADCASTSD 16(AX), Y10
	VBROADCASTSD 24(AX), Y11
	MOVQ centre_base+56(FP), DI
	XORQ BX, BX
as_loop:
	CMPQ BX, CX
	JGE as_done
	VCVTPS2PD (DI)(BX*1), Y0         // c, four coordinates
	VMOVUPD (DX)(BX*2), Y6           // their steps so far
	VCVTPS2PD (R8)(BX*1), Y1
	VSUBPD Y0, Y1, Y1
	VMULPD Y8, Y1, Y1
	VADDPD Y1, Y6, Y6
	VCVTPS2PD (R9)(BX*1), Y2
	VSUBPD Y0, Y2, Y2
	VMULPD Y9, Y2, Y2
	VADDPD Y2, Y6, Y6
	VCVTPS2PD (R10)(BX*1), Y3
	VSUBPD Y0, Y3, Y3
	VMULPD Y10, Y3, Y3
	VADDPD Y3, Y6, Y6
	VCVTPS2PD (R11)(BX*1), Y4
	VSUBPD Y0, Y4, Y4
	VMULPD Y11, Y4, Y4
	VADDPD Y4, Y6, Y6
	VMOVUPD Y6, (DX)(BX*2)
	ADDQ $16, BX
	JMP as_loop
as_done:
	VZEROUPPER
	RET

// CE is a compare-exchange of the sorting network: a gets the smaller of
// a and b, b the larger (t is scratch).
#define CE(a, b, t) \
	VMINPS b, a, t; \
	VMAXPS b, a, b; \
	VMOVAPS t, a

// func median8AVX2(dst []float32, inputs [][]float32, lo int) int
//
// medianOf8 of inputs[0..7][lo+j] into dst[j] in groups of eight, by the
// same odd-even merge network; it stops before the first group with a
// column medianOf8 gives up on and zeroMedian cannot answer +0 for (a
// NaN or ∞ − ∞ in its sum, or middle values both zero with a −0 in the
// column) and returns how many it did. Middle zeros in a column without
// −0 are +0 both, their mean +0, as zeroMedian says.
TEXT ·median8AVX2(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ inputs_base+24(FP), SI
	MOVQ lo+48(FP), AX
	SHLQ $2, AX
	FOUR_INPUTS
	MOVQ 96(SI), R12
	ADDQ AX, R12
	MOVQ 120(SI), R13
	ADDQ AX, R13
	MOVQ 144(SI), DX
	ADDQ AX, DX
	MOVQ 168(SI), SI
	ADDQ AX, SI
	MOVQ $0x4000000000000000, AX
	MOVQ AX, X13
	VBROADCASTSD X13, Y13            // 2.0
	MOVL $0x80000000, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14            // −0
	XORQ BX, BX
m8_loop:
	CMPQ BX, CX
	JGE m8_done
	VMOVUPS (R8)(BX*4), Y0
	VMOVUPS (R9)(BX*4), Y1
	VMOVUPS (R10)(BX*4), Y2
	VMOVUPS (R11)(BX*4), Y3
	VMOVUPS (R12)(BX*4), Y4
	VMOVUPS (R13)(BX*4), Y5
	VMOVUPS (DX)(BX*4), Y6
	VMOVUPS (SI)(BX*4), Y7
	VADDPS Y1, Y0, Y8                // the sum medianOf8 tests, in its order
	VADDPS Y2, Y8, Y8
	VADDPS Y3, Y8, Y8
	VADDPS Y4, Y8, Y8
	VADDPS Y5, Y8, Y8
	VADDPS Y6, Y8, Y8
	VADDPS Y7, Y8, Y8
	VCMPPS $3, Y8, Y8, Y9            // unordered: NaN
	VPCMPEQD Y14, Y0, Y8             // a −0 in the column
	VPCMPEQD Y14, Y1, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y2, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y3, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y4, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y5, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y6, Y10
	VPOR Y10, Y8, Y8
	VPCMPEQD Y14, Y7, Y10
	VPOR Y10, Y8, Y8
	CE(Y0, Y1, Y10)
	CE(Y2, Y3, Y10)
	CE(Y4, Y5, Y10)
	CE(Y6, Y7, Y10)
	CE(Y0, Y2, Y10)
	CE(Y1, Y3, Y10)
	CE(Y4, Y6, Y10)
	CE(Y5, Y7, Y10)
	CE(Y1, Y2, Y10)
	CE(Y5, Y6, Y10)
	CE(Y0, Y4, Y10)
	CE(Y1, Y5, Y10)
	CE(Y2, Y6, Y10)
	CE(Y3, Y7, Y10)
	CE(Y2, Y4, Y10)
	CE(Y3, Y5, Y10)
	CE(Y3, Y4, Y10)
	VXORPS Y12, Y12, Y12
	VCMPPS $0, Y12, Y3, Y10
	VCMPPS $0, Y12, Y4, Y11
	VANDPS Y11, Y10, Y10             // both middle values zero
	VANDPS Y8, Y10, Y10              // … with a −0 in the column
	VORPS Y10, Y9, Y9
	VMOVMSKPS Y9, AX
	TESTL AX, AX
	JNZ m8_done
	MEAN_OF_MIDDLES(Y3, X3, Y4, X4, Y5, X5)
	VMOVUPS Y5, (DI)(BX*4)
	ADDQ $8, BX
	JMP m8_loop
m8_done:
	MOVQ BX, ret+56(FP)
	VZEROUPPER
	RET

// func medianNetAVX2(dst []float32, inputs [][]float32, lo int, net []int, scratch *[maxNetInputs * 8]float32, mid int, even bool) int
//
// The median of k = len(inputs) values per column, columns in groups of
// eight: each input's eight values go to a row of scratch, the sorting
// network net (byte offsets of rows, two per compare-exchange) sorts each
// column, and the result is row mid (k odd) or the mean, in float64, of
// rows mid−1 and mid (k even). It stops before the first group holding a
// NaN, a middle value that is zero in a column with a −0 (a network may
// order ±0 differently from the sort whose bits the rules keep), or a NaN
// mean (−∞ and +∞ in the middle), and returns how many it did.
TEXT ·medianNetAVX2(SB), NOSPLIT, $0-112
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	ANDQ $~7, CX
	MOVQ inputs_base+24(FP), SI
	MOVQ inputs_len+32(FP), R8       // k
	MOVQ lo+48(FP), DX
	SHLQ $2, DX                      // lo in bytes
	MOVQ net_base+56(FP), R10
	MOVQ net_len+64(FP), R11
	SHLQ $3, R11                     // bytes of net
	MOVQ scratch+80(FP), R9
	MOVQ $0x4000000000000000, AX
	MOVQ AX, X13
	VBROADCASTSD X13, Y13            // 2.0
	MOVL $0x80000000, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14            // −0
	VXORPS Y12, Y12, Y12             // 0
	XORQ BX, BX
mn_group:
	CMPQ BX, CX
	JGE mn_out
	VXORPS Y9, Y9, Y9                // NaN seen
	VXORPS Y8, Y8, Y8                // −0 seen
	XORQ R12, R12                    // row
mn_load:
	CMPQ R12, R8
	JGE mn_sort
	IMUL3Q $24, R12, AX
	MOVQ (SI)(AX*1), R13
	ADDQ DX, R13
	VMOVUPS (R13)(BX*4), Y0
	VCMPPS $3, Y0, Y0, Y1
	VORPS Y1, Y9, Y9
	VPCMPEQD Y14, Y0, Y1
	VPOR Y1, Y8, Y8
	MOVQ R12, AX
	SHLQ $5, AX
	VMOVUPS Y0, (R9)(AX*1)
	INCQ R12
	JMP mn_load
mn_sort:
	VMOVMSKPS Y9, AX
	TESTL AX, AX
	JNZ mn_out
	XORQ R12, R12
mn_pair:
	CMPQ R12, R11
	JGE mn_middle
	MOVQ (R10)(R12*1), AX
	MOVQ 8(R10)(R12*1), R13
	VMOVUPS (R9)(AX*1), Y0
	VMOVUPS (R9)(R13*1), Y1
	VMINPS Y1, Y0, Y2
	VMAXPS Y1, Y0, Y1
	VMOVUPS Y2, (R9)(AX*1)
	VMOVUPS Y1, (R9)(R13*1)
	ADDQ $16, R12
	JMP mn_pair
mn_middle:
	MOVQ mid+88(FP), AX
	SHLQ $5, AX
	VMOVUPS (R9)(AX*1), Y4           // upper middle (the middle, k odd)
	VCMPPS $0, Y12, Y4, Y10          // zero
	MOVBLZX even+96(FP), R13
	TESTQ R13, R13
	JZ mn_odd
	VMOVUPS -32(R9)(AX*1), Y3        // lower middle
	VCMPPS $0, Y12, Y3, Y11
	VANDPS Y11, Y10, Y10             // both zero
	VANDPS Y8, Y10, Y10              // … with a −0 in the column
	MEAN_OF_MIDDLES(Y3, X3, Y4, X4, Y5, X5)
	VMOVAPS Y5, Y4                   // the means
	VCMPPS $3, Y4, Y4, Y11           // a NaN mean
	VORPS Y11, Y10, Y10
	JMP mn_store
mn_odd:
	VANDPS Y8, Y10, Y10              // a zero middle with a −0 in the column
mn_store:
	VMOVMSKPS Y10, AX
	TESTL AX, AX
	JNZ mn_out
	VMOVUPS Y4, (DI)(BX*4)
	ADDQ $8, BX
	JMP mn_group
mn_out:
	MOVQ BX, ret+104(FP)
	VZEROUPPER
	RET

// func addStep1AVX2(step []float64, in []float32, scale float64, centre []float32)
//
// Adds to step[j], for j in [0, len(step)&^3), scale·(in[j] − centre[j]),
// four coordinates per vector: addSteps's loop over one input.
TEXT ·addStep1AVX2(SB), NOSPLIT, $0-80
	MOVQ step_base+0(FP), DX
	MOVQ step_len+8(FP), CX
	ANDQ $~3, CX
	SHLQ $2, CX                      // bytes of float32; step is read at twice the offset
	MOVQ in_base+24(FP), R8
	VBROADCASTSD scale+48(FP), Y8
	MOVQ centre_base+56(FP), DI
	XORQ BX, BX
a1_loop:
	CMPQ BX, CX
	JGE a1_done
	VCVTPS2PD (DI)(BX*1), Y0
	VMOVUPD (DX)(BX*2), Y6
	VCVTPS2PD (R8)(BX*1), Y1
	VSUBPD Y0, Y1, Y1
	VMULPD Y8, Y1, Y1
	VADDPD Y1, Y6, Y6
	VMOVUPD Y6, (DX)(BX*2)
	ADDQ $16, BX
	JMP a1_loop
a1_done:
	VZEROUPPER
	RET

// func moveCentreAVX2(centre []float32, step []float64, k float64)
//
// centre[j] = float32(float64(centre[j]) + step[j]/k) for j in
// [0, len(centre)&^3), four coordinates per vector: centered clipping's
// move of the centre by the mean step.
TEXT ·moveCentreAVX2(SB), NOSPLIT, $0-56
	MOVQ centre_base+0(FP), DI
	MOVQ centre_len+8(FP), CX
	ANDQ $~3, CX
	SHLQ $2, CX                      // bytes of float32; step is read at twice the offset
	MOVQ step_base+24(FP), DX
	VBROADCASTSD k+48(FP), Y8
	XORQ BX, BX
mc_loop:
	CMPQ BX, CX
	JGE mc_done
	VCVTPS2PD (DI)(BX*1), Y0
	VMOVUPD (DX)(BX*2), Y1
	VDIVPD Y8, Y1, Y1
	VADDPD Y1, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS X0, (DI)(BX*1)
	ADDQ $16, BX
	JMP mc_loop
mc_done:
	VZEROUPPER
	RET

// func nonZeroMasksAVX2(values []int8, masks *uint32)
//
// For each whole 32 values, the mask of the non-zero ones (bit i for
// value i of the 32) into masks, one uint32 each.
TEXT ·nonZeroMasksAVX2(SB), NOSPLIT, $0-32
	MOVQ values_base+0(FP), SI
	MOVQ values_len+8(FP), CX
	ANDQ $~31, CX
	MOVQ masks+24(FP), DI
	VPXOR Y1, Y1, Y1
	XORQ BX, BX
nz_loop:
	CMPQ BX, CX
	JGE nz_done
	VMOVDQU (SI)(BX*1), Y0
	VPCMPEQB Y1, Y0, Y0
	VPMOVMSKB Y0, AX
	NOTL AX
	MOVQ BX, DX
	SHRQ $3, DX                      // the mask's byte offset: BX/32·4
	MOVL AX, (DI)(DX*1)
	ADDQ $32, BX
	JMP nz_loop
nz_done:
	VZEROUPPER
	RET
