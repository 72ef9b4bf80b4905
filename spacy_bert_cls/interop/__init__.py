"""Other libraries' formats: HF transformers folders in and out (`hf`)."""
