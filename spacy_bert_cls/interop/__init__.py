"""Other libraries' formats: HF transformers folders in (`hf_import`) and out (`hf_export`, `onnx`)."""
