#ifndef ROSTER_COPENSSL_SHIM_H
#define ROSTER_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* MD5 through the EVP interface (the MD5() shortcut is deprecated in OpenSSL 3). Used only as an
   identifier of a profile id, never for security. `md` is the implementation fetched once by the caller
   (EVP_md5() makes OpenSSL 3 look it up on every call); NULL falls back to that. Returns 1 on success. */
static inline int roster_md5(const EVP_MD *md, const void *data, size_t length, unsigned char out[16]) {
    unsigned int out_length = 0;
    return EVP_Digest(data, length, out, &out_length, md ? md : EVP_md5(), NULL) == 1 && out_length == 16;
}
/* HMAC-SHA-1 for TOTP (RFC 6238 fixes SHA-1; libsodium has no HMAC-SHA-1). Returns 1 on success. */
static inline int roster_hmac_sha1(const void *key, int key_length, const unsigned char *data, size_t length,
                                   unsigned char out[20]) {
    unsigned int out_length = 0;
    return HMAC(EVP_sha1(), key, key_length, data, length, out, &out_length) != NULL && out_length == 20;
}
#endif
