def to_onnx(inputs, outputs, path=None):
    raise NotImplementedError
