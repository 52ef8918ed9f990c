{
  "variables": {
    "zstd_lib": "<!(node -p \"require('path').relative('.', require('path').join(require('path').dirname(require.resolve('zstd-napi/package.json')), 'deps/zstd/lib'))\")"
  },
  "targets": [{
    "target_name": "viva_native",
    "sources": [
      "viva_native.c",
      "<(zstd_lib)/common/entropy_common.c",
      "<(zstd_lib)/common/error_private.c",
      "<(zstd_lib)/common/fse_decompress.c",
      "<(zstd_lib)/common/xxhash.c",
      "<(zstd_lib)/common/zstd_common.c",
      "<(zstd_lib)/decompress/huf_decompress.c",
      "<(zstd_lib)/decompress/huf_decompress_amd64.S",
      "<(zstd_lib)/decompress/zstd_ddict.c",
      "<(zstd_lib)/decompress/zstd_decompress_block.c",
      "<(zstd_lib)/decompress/zstd_decompress.c"
    ],
    "include_dirs": ["<(zstd_lib)"],
    "defines": ["XXH_NAMESPACE=VIVA_ZSTD_", "ZSTD_NO_TRACE", "ZSTDLIB_VISIBLE=", "ZSTDERRORLIB_VISIBLE="],
    "cflags": ["-O2", "-Wall", "-fvisibility=hidden"]
  }]
}
