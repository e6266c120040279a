/* A stand-in for bcryptprimitives.dll, which Wine 8 lacks and every Rust >= 1.78 program for
 * Windows loads for ProcessPrng (its random bytes). It forwards to advapi32's RtlGenRandom
 * (SystemFunction036), which Wine has. Built with mingw by scripts/test-windows; used only
 * under Wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
