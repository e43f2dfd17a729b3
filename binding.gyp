{
  "targets": [
    {
      "target_name": "baton",
      "sources": ["native/addon.cc", "native/dataplane.cc", "native/endpoint.cc", "native/pool.cc", "native/sockets.cc", "native/process.cc"],
      "actions": [
        {
          "action_name": "bpf_skeleton",
          "inputs": ["bpf/baton.bpf.c", "bpf/baton_shared.h", "bpf/build.sh"],
          "outputs": ["<(INTERMEDIATE_DIR)/bpf/baton.skel.h"],
          "action": ["bash", "bpf/build.sh", "<(INTERMEDIATE_DIR)/bpf"]
        }
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf",
        "<(INTERMEDIATE_DIR)/bpf"
      ],
      "libraries": ["<!@(pkg-config --libs libbpf)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"]
    }
  ]
}
