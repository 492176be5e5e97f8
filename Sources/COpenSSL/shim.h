#ifndef ROSTER_COPENSSL_SHIM_H
#define ROSTER_COPENSSL_SHIM_H
#include <openssl/evp.h>

/* MD5 through the EVP interface (the MD5() shortcut is deprecated in OpenSSL 3). Used only as an
   identifier of a profile id, never for security. Returns 1 on success. */
static inline int roster_md5(const void *data, size_t length, unsigned char out[16]) {
    unsigned int out_length = 0;
    return EVP_Digest(data, length, out, &out_length, EVP_md5(), NULL) == 1 && out_length == 16;
}
#endif
