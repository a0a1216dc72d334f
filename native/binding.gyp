# The Node binding: links the kernel library (lkl-build/out, built by
# lkl-build/build.sh) into lklfs.node. Build: npm run build:native.
{
  "targets": [
    {
      "target_name": "lklfs",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/kernel.cc",
        "src/paths.cc",
        "src/files.cc",
        "src/copy.cc",
        "src/queue.cc",
        "src/host.cc",
        "src/batch.cc",
        "src/cache_trim.cc",
        "src/tar_format.cc",
        "src/extent_reader.cc",
        "src/tar_out.cc",
        "src/tree_reader.cc",
        "src/tree_in.cc",
        "src/tar_input.cc",
        "src/tar_in_reader.cc",
        "src/tar_in.cc",
        "src/tree_out.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../lkl-build/out/include"
      ],
      "libraries": ["<(module_root_dir)/../lkl-build/out/lib/liblkl.a", "-lpthread"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-Werror"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,-z,noexecstack"],
      "conditions": [
        # lklfs mount: built where libfuse3's headers are (libfuse3-dev);
        # the library itself is loaded at mount time, never linked.
        ["'<!(pkg-config --exists fuse3 && echo yes || echo no)' == 'yes'", {
          "sources": ["src/fuse_lib.cc", "src/fuse_inodes.cc", "src/fuse_listings.cc", "src/fuse_ops.cc", "src/fuse_serve.cc"],
          "include_dirs": ["<!@(pkg-config --cflags-only-I fuse3 | sed s/-I//g)"],
          "defines": ["LKLFS_FUSE"],
          "libraries": ["-ldl"]
        }]
      ]
    }
  ]
}
